"""Celery tasks of the search app. They take ids, re-fetch, skip what is done, and are safe to
run twice; the work itself is in search.pipeline (which activates a feature once its vectors are
complete)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from search import pipeline

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
def embed_artworks(ids: list[int], replace: bool = False) -> dict[str, Any]:
    """Embed a batch of artworks (routed to the `embed` queue) under the loaded model's feature."""
    report = pipeline.embed_artworks(ids=ids, replace=replace)
    return {
        "embedded": report.embedded,
        "skipped": report.skipped,
        "failed": report.failed,
        "not_written": report.not_written,
    }
