"""Scale-out: map a function over shards, in this process or on a Ray cluster, same results.

Results never depend on where a shard ran: work is cut into shards the same way for every
executor (users by id, texts by position), each shard gets its own seed derived from the run's
seed and the shard number (:func:`shard_seed`), and results come back in shard order. So a run
with ``executor: ray`` reproduces the in-process run exactly, and adding machines changes only
the time.

To use a real cluster, start it (``ray start --head`` on one machine, ``ray start
--address=HEAD:6379`` on the others, each with shopaug installed), then set ``executor.address``
to ``auto`` on a cluster machine or ``ray://HEAD:10001`` from outside. Without an address a
local Ray is started with ``executor.num_cpus`` CPUs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from shopaug.pipeline.config import ExecutorConfig

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """``map(fn, shards, shared)`` = ``[fn(shared, shard) for shard in shards]``, somewhere."""

    def map(
        self, fn: Callable[[Any, T], R], shards: Sequence[T], shared: Any = None
    ) -> list[R]: ...


class LocalExecutor:
    """Shards one after another in this process."""

    def map(self, fn: Callable[[Any, T], R], shards: Sequence[T], shared: Any = None) -> list[R]:
        return [fn(shared, shard) for shard in shards]


class RayExecutor:
    """Shards as Ray tasks; ``shared`` is put into the object store once, not once per task."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        import ray

        if not ray.is_initialized():
            options: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
            if address:
                options["address"] = address
            else:
                options.update(num_cpus=num_cpus, include_dashboard=False)
            ray.init(**options)
        self._ray = ray

    def map(self, fn: Callable[[Any, T], R], shards: Sequence[T], shared: Any = None) -> list[R]:
        ray = self._ray
        task = ray.remote(fn)
        shared_ref = ray.put(shared)
        return ray.get([task.remote(shared_ref, shard) for shard in shards])


def make_executor(config: ExecutorConfig) -> Executor:
    if config.kind == "ray":
        return RayExecutor(config.address, config.num_cpus)
    return LocalExecutor()


def shard_seed(seed: int, shard: int, n_shards: int) -> int:
    """The seed of one shard: the run's seed itself when there is one shard (so a one-shard run
    equals an unsharded one), else an independent stream derived from (seed, shard)."""
    if n_shards == 1:
        return seed
    return int(np.random.SeedSequence([seed, shard]).generate_state(1)[0])


def user_shards(users: np.ndarray, n_shards: int) -> list[np.ndarray]:
    """Row indices of each shard, rows assigned by a stable hash of the user id (any dtype), so
    a user's rows stay together and the assignment is the same in every process."""
    shard_of = pd.util.hash_array(np.asarray(users)) % np.uint64(n_shards)
    return [np.flatnonzero(shard_of == s) for s in range(n_shards)]


def chunks(n: int, n_shards: int) -> list[slice]:
    """``n`` positions in ``n_shards`` contiguous, nearly equal pieces (empty ones dropped)."""
    bounds = np.linspace(0, n, n_shards + 1).astype(int)
    return [slice(a, b) for a, b in itertools.pairwise(bounds) if b > a]
