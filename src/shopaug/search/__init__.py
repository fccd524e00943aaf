"""Product search: fielded BM25, dense retrieval with a (fine-tunable) text encoder, and hybrids.

Works on day one with no query log (BM25 plus the pretrained encoder), and improves when the
encoder is fine-tuned on real and synthetic (query, item) pairs (:mod:`shopaug.search.finetune`).
"""

from shopaug.search.base import FieldWeights, SearchConfig, SearchFilters, SearchHit
from shopaug.search.engine import SearchEngine

__all__ = ["FieldWeights", "SearchConfig", "SearchEngine", "SearchFilters", "SearchHit"]
