"""Operational figures shared by every process."""

from __future__ import annotations

from django.db import models


class PublishedMetric(models.Model):
    """One series of a gauge set outside the web process (a nightly Celery job, a command) and
    read by ``/metrics`` in every web process: kept here, not in the memory of the process that
    set it, which the web tier never sees (and which would leave a series per process id).

    Not tenant-owned: ``/metrics`` is the platform's, and an organisation is only a label.
    """

    name = models.CharField(max_length=100)
    #: the labels as sorted JSON text: what makes a series unique
    labels_key = models.CharField(max_length=500)
    labels = models.JSONField(default=dict)
    value = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "labels_key"], name="published_metric_series"),
        ]

    def __str__(self) -> str:
        return f"{self.name}{self.labels} = {self.value}"
