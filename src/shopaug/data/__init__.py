"""Stage 1: records, loaders, validation, cleaning, splits and the run folder's store."""

from shopaug.data.dataset import Dataset
from shopaug.data.errors import DataError
from shopaug.data.ingest import IngestReport, IngestSpec, ingest
from shopaug.data.sequences import Sequences
from shopaug.data.splits import EvalCases, Split, make_split
from shopaug.data.store import DatasetStore

__all__ = [
    "DataError",
    "Dataset",
    "DatasetStore",
    "EvalCases",
    "IngestReport",
    "IngestSpec",
    "Sequences",
    "Split",
    "ingest",
    "make_split",
]
