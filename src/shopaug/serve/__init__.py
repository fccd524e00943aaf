"""Stage: serving. A versioned model bundle, a FastAPI service over it, a durable feedback log,
and retraining that folds the log into the next version (swapped in without downtime)."""

from shopaug.serve.bundle import Bundle, BundleManifest, RunLayout, TrainConfig, train_bundle
from shopaug.serve.feedback import FeedbackLog, LogRecord
from shopaug.serve.index import ItemIndex
from shopaug.serve.retrain import retrain
from shopaug.serve.state import ShopState

__all__ = [
    "Bundle",
    "BundleManifest",
    "FeedbackLog",
    "ItemIndex",
    "LogRecord",
    "RunLayout",
    "ShopState",
    "TrainConfig",
    "retrain",
    "train_bundle",
]
