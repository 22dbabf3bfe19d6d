"""A job (an import or an embedding run started from the admin) and the records it could not
process.

The state lives here, not in the worker: a worker that dies mid-job has its task delivered again,
and the runner resumes after the records already counted (gallery/jobs/runner.py). An embedding
run is split into batches (JobBatch) that workers embed independently; each batch's outcome is
counted once, however often the broker delivers it.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from gallery.models import Collection


class Job(models.Model):
    class Kind(models.TextChoices):
        ZIP_IMPORT = "zip_import", "ZIP import"
        NGA_IMPORT = "nga_import", "NGA import"
        EMBEDDING = "embedding", "Embedding run"

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    FINAL_STATES = frozenset({State.DONE, State.FAILED, State.CANCELLED})

    kind = models.CharField(max_length=32, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    # The collection an import writes into; none for an embedding run.
    collection = models.ForeignKey(
        Collection, on_delete=models.PROTECT, related_name="jobs", null=True, blank=True
    )
    # An import's options (source label, IIIF width, limit, classification, record ids to retry;
    # its input files are under `workdir`), or an embedding run's (gallery/jobs/services.py).
    parameters = models.JSONField(default=dict, blank=True)
    workdir = models.CharField(max_length=500, blank=True)
    total = models.PositiveIntegerField(null=True, blank=True)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} {self.target}"

    @property
    def target(self) -> str:
        """What the job writes into: its collection, or the feature an embedding run fills."""
        if self.kind == self.Kind.EMBEDDING:
            feature = self.parameters.get("feature_name")
            return f"for {feature}" if feature else "for the searched feature"
        return f"into {self.collection}"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def pending(self) -> int | None:
        if self.total is None:
            return None
        return max(0, self.total - self.done - self.failed)

    def throughput(self) -> float | None:
        """Records per second since the job started (None before it has processed any)."""
        processed = self.done + self.failed
        if self.started_at is None or processed == 0:
            return None
        elapsed = ((self.finished_at or timezone.now()) - self.started_at).total_seconds()
        return processed / elapsed if elapsed > 0 else None

    def time_left(self) -> timedelta | None:
        rate, pending = self.throughput(), self.pending
        if self.is_final or rate is None or pending is None:
            return None
        return timedelta(seconds=round(pending / rate))


class JobError(models.Model):
    """One record a job could not import, with the reason (downloadable as CSV)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="errors")
    record_id = models.CharField(max_length=500)
    reason = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.record_id}: {self.reason}"


class JobBatch(models.Model):
    """One batch of an embedding run: the artworks it covers, and once a worker has embedded
    them, their outcome. `counted` flips once, so a batch delivered twice counts once."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    artwork_ids = models.JSONField(default=list)
    counted = models.BooleanField(default=False)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="jobbatch_job_number_unique")
        ]

    def __str__(self) -> str:
        return f"batch {self.number} of job {self.job_id}"
