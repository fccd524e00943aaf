"""How long-running work reports progress: one callback type for every package.

A stage takes ``on_stage(label, fraction)`` (implicit's ``callback`` style): the label says what
it is doing now, the fraction (0 to 1) how far along the whole stage is. The terminal turns the
calls into a progress bar with rate and ETA (``shopaug.cli.app.stage_progress``); a library
caller passes nothing and hears nothing. Messages for people who read logs go through
``logging`` in each package instead.
"""

from __future__ import annotations

from collections.abc import Callable

StageCallback = Callable[[str, float], None]


def quiet(stage: str, fraction: float) -> None:
    """The callback of a caller that does not listen."""


def notifier(on_stage: StageCallback | None) -> StageCallback:
    """``on_stage``, or one that does nothing, so stages call it without checking."""
    return on_stage if on_stage is not None else quiet


def within(notify: StageCallback, start: float, span: float, prefix: str = "") -> StageCallback:
    """A callback for a piece of the work that owns ``[start, start + span]`` of the whole."""

    def update(stage: str, fraction: float) -> None:
        notify(f"{prefix}{stage}", start + span * min(max(fraction, 0.0), 1.0))

    return update


def shares(
    notify: StageCallback, start: float, span: float, n: int, prefix: str = ""
) -> list[StageCallback]:
    """One callback per piece of ``n`` equal pieces of ``[start, start + span]``, in order."""
    return [within(notify, start + span * i / n, span / n, prefix) for i in range(n)]
