"""Stage 9: config-driven, cached, tracked runs of the whole loop, in-process or on Ray.

``load_config`` reads a run YAML into a :class:`RunConfig`; ``run_pipeline`` executes its stages
(reusing cached ones); ``compare_run_folders`` pairs two runs' per-user metrics.
"""

from shopaug.pipeline.compare import compare_run_folders
from shopaug.pipeline.config import ConfigError, RunConfig, load_config
from shopaug.pipeline.runner import RunOutcome, run_pipeline

__all__ = [
    "ConfigError",
    "RunConfig",
    "RunOutcome",
    "compare_run_folders",
    "load_config",
    "run_pipeline",
]
