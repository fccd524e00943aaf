"""The service's Prometheus metrics (one registry per process; summed across workers through
``PROMETHEUS_MULTIPROC_DIR`` when it is set)."""

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Histogram(
    "shopaug_request_seconds",
    "Request latency by endpoint, method and status.",
    ["endpoint", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVENTS = Counter("shopaug_events_accepted", "Events appended to the feedback log.")
ITEMS = Counter("shopaug_items_upserted", "Items added or changed through POST /items.")
FALLBACKS = Counter("shopaug_fallbacks", "Recommendations answered by the popularity fallback.")
MODEL_VERSION = Gauge(
    "shopaug_model_version", "Model version being served.", multiprocess_mode="max"
)


def exposition() -> bytes:
    """The metrics in Prometheus' text format: this process's, or every worker's."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)
