"""The Celery task that runs an import job (on the `default` queue), and the queueing of any job
(an embedding run's start task is search's)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from gallery.jobs.models import Job
from gallery.jobs.runner import run_job
from search.queueing import embedding_batch, start_run

logger = logging.getLogger(__name__)

QUEUE = "default"


@shared_task(name="gallery.cockpit.tasks.run_import_job", acks_late=True)
def run_import_job(job_id: int) -> str | None:
    """Run an import job; the imported images are queued for embedding in full batches while
    it runs. Acknowledged when done, so a worker that dies mid-job has it delivered again and
    the job resumes where its counts stopped."""
    with embedding_batch():
        job = run_job(job_id=job_id)
    return None if job is None else job.state


def queue_job(*, job: Job) -> None:
    """Queue the job's task once the transaction that created it commits. A broker that cannot
    be reached fails the job with a message saying so (it can be retried from the jobs page)."""
    if job.kind == Job.Kind.EMBEDDING:
        start_run(job=job)
        return

    def send() -> None:
        try:
            run_import_job.apply_async(args=[job.pk], queue=QUEUE, retry=False)
        except Exception as exc:  # kombu and redis raise many types; the job must say why
            logger.error("could not queue job %s: %s", job.pk, exc)
            Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(
                state=Job.State.FAILED,
                message=f"The job could not be queued (the broker is unreachable: {exc}). "
                "Retry it once the broker is back.",
            )

    transaction.on_commit(send)
