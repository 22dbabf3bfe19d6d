"""Celery tasks of the search app. They take ids, re-fetch, skip what is done, and are safe to
run twice; the work itself is in search.pipeline (a batch) and search.queueing (an embedding
run's start)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from search import pipeline, queueing

# Worth retrying: the database restarting or a connection dropped. A broken image is not (it is
# recorded as an EmbeddingFailure), nor a model that cannot load (a configuration error).
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


@shared_task(
    name="search.tasks.embed_artworks",
    acks_late=True,  # redelivered if the worker dies mid-batch (see gallery/celery.py)
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def embed_artworks(
    ids: list[int],
    replace: bool = False,
    feature_id: int | None = None,
    job_id: int | None = None,
    batch: int | None = None,
) -> dict[str, Any]:
    """Embed a batch of artworks (routed to the `embed` queue): under the feature `feature_id`
    with its checkpoint, else under the features they are searched with; as batch `batch` of
    the embedding run `job_id` when it belongs to one."""
    report = pipeline.embed_batch(
        ids=ids, replace=replace, feature_id=feature_id, job_id=job_id, batch=batch
    )
    if report is None:
        return {"stopped": True}
    return {
        "embedded": report.embedded,
        "skipped": report.skipped,
        "failed": report.failed,
        "not_written": report.not_written,
    }


@shared_task(
    name="search.tasks.start_embedding_run",
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def start_embedding_run(job_id: int) -> int:
    """Start an embedding run (on the `default` queue): pick its artworks, plan and queue its
    batches. Safe to deliver twice: the plan is made once."""
    return queueing.plan_and_queue_run(job_id=job_id)
