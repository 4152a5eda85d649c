"""What the nightly scheduler ran: one row per job, store and local night."""

from __future__ import annotations

from django.db import models

from inventory.models.base import TenantModel
from inventory.models.tenancy import Store


class NightlyJobStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class NightlyJobRun(TenantModel):
    """A nightly job's run for one store and one local date (the store's calendar day whose
    closing it follows).

    The unique constraint on (job, store, local date) is what makes the scheduler run a night
    once: a second beat, a second worker or a retried task inserting the same row waits for the
    first and then finds it there. The row is written in the same transaction as the job's
    work, so a worker that dies mid-job leaves no row and the next tick runs the night again;
    ``running`` is only ever seen inside that transaction. A failed night keeps its row
    (``failed`` with the error) and is not retried automatically.
    """

    job = models.CharField(max_length=100)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="nightly_job_runs")
    local_date = models.DateField()
    status = models.CharField(
        max_length=8, choices=NightlyJobStatus.choices, default=NightlyJobStatus.RUNNING
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-local_date", "job", "store_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "store", "local_date"], name="nightly_job_run_once_per_night"
            ),
        ]
        indexes = [
            models.Index(fields=["org", "store", "-local_date"], name="nightly_run_store_date"),
        ]

    def __str__(self) -> str:
        return f"{self.job} {self.store_id} {self.local_date} {self.status}"
