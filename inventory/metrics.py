"""Prometheus metrics. With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn with several workers),
``/metrics`` aggregates every process's samples."""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

http_requests_total = Counter(
    "http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
http_request_duration_seconds = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

stock_movements_total = Counter(
    "stock_movements_total", "Stock ledger rows written (ok) and refused documents (failed)",
    ["ref_type", "result", "reason"],
)
stock_out_of_sync_items = Gauge(
    "stock_out_of_sync_items",
    "Quants whose ledger sum differs from the quantity, at the last check of the organisation"
    " (scope=all) or of one of its stores (scope=store code)",
    ["org", "scope"],
)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
