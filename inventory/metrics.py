"""Inventory's metrics, and published gauges for every app.

* ``stock_movements_total``: a per-process counter (``core.metrics`` adds the processes up).
* **Figures set outside the web process** — the nightly reconciliation's out-of-sync count, and
  the discrepancy and task gauges to come — are published gauges (``PublishedGauge``), stored
  in the database (``PublishedMetric``), so whichever process sets them (a Celery worker, a
  command), every web process reads the same value, with no series per process id left behind.
"""

from __future__ import annotations

import json
import logging

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.metrics import register_collector

logger = logging.getLogger(__name__)

stock_movements_total = Counter(
    "stock_movements_total",
    "Stock ledger rows written (ok) and refused documents (failed)",
    ["ref_type", "result", "reason"],
)


class PublishedGauge:
    """A gauge any process sets and every process reads (see the module's docstring)."""

    def __init__(self, name: str, documentation: str, labelnames: list[str]):
        self.name, self.documentation, self.labelnames = name, documentation, list(labelnames)
        _PUBLISHED[name] = self

    def _key(self, labels: dict) -> str:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes the labels {self.labelnames}")
        return json.dumps({name: str(labels[name]) for name in self.labelnames}, sort_keys=True)

    def set(self, value: float, **labels) -> None:
        from inventory.models import PublishedMetric

        PublishedMetric.objects.update_or_create(
            name=self.name,
            labels_key=self._key(labels),
            defaults={"labels": {k: str(v) for k, v in labels.items()}, "value": float(value)},
        )

    def value(self, **labels) -> float | None:
        from inventory.models import PublishedMetric

        found = PublishedMetric.objects.filter(name=self.name, labels_key=self._key(labels))
        return found.values_list("value", flat=True).first()


_PUBLISHED: dict[str, PublishedGauge] = {}


class PublishedCollector(Collector):
    """Every published series, read in one query when ``/metrics`` is scraped."""

    def describe(self):
        # What registering needs to know, without a query: a registry asks a collector for its
        # names when it is registered (at import time, before there may be a database).
        for gauge in _PUBLISHED.values():
            yield GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labelnames)

    def collect(self):
        from inventory.models import PublishedMetric

        try:
            rows = list(
                PublishedMetric.objects.filter(name__in=list(_PUBLISHED))
                .order_by("name", "labels_key")
                .values_list("name", "labels", "value")
            )
        except Exception as exc:  # noqa: BLE001 - a database outage must not take /metrics down
            logger.warning(
                "published metrics unavailable: %s: %s",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
            return
        families = {}
        for name, labels, value in rows:
            gauge = _PUBLISHED[name]
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(
                    name, gauge.documentation, labels=gauge.labelnames
                )
            family.add_metric([labels.get(label, "") for label in gauge.labelnames], value)
        yield from families.values()


stock_out_of_sync_items = PublishedGauge(
    "stock_out_of_sync_items",
    "Quants whose ledger sum differs from the quantity, at the last check of the organisation"
    " (scope=all) or of one of its stores (scope=store code)",
    ["org", "scope"],
)

register_collector(PublishedCollector())
