"""The Prometheus registry and what ``/metrics`` serves.

Per-process counters and histograms live in ``prometheus_client``'s registry; with
``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn with several workers) ``/metrics`` adds up every
process's samples. Figures that are not per-process — a gauge a nightly job sets in a Celery
worker — come from collectors an app registers with ``register_collector`` (inventory's
published gauges read them from the database), and are served in either mode.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector

http_requests_total = Counter(
    "http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
http_request_duration_seconds = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_COLLECTORS: list[Collector] = []


def register_collector(collector: Collector) -> None:
    """Serve ``collector``'s figures from every process's ``/metrics``."""
    REGISTRY.register(collector)
    _COLLECTORS.append(collector)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        for collector in _COLLECTORS:
            registry.register(collector)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
