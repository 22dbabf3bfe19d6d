"""Queueing embeddings: the ids of artworks whose image is new or changed go on the `embed`
queue in batches of GALLERY_EMBED_TASK_BATCH.

The old vectors of a changed image are deleted at once (they describe a picture that is gone),
then the ids are queued. A broker that is down never breaks an import: the failure is logged and
`manage.py embed --missing` catches up later.

Embedding runs (a new feature, a re-embed, "queue the missing ones", a retry) are jobs
(gallery/jobs): `start_run` queues the run's start task on the `default` queue, which picks the
artworks and queues the run's batches (`plan_and_queue_run`); each batch names the run and the
feature it fills, and is counted into the run once embedded (search/pipeline.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import F

from gallery.jobs.models import Job, JobBatch
from gallery.jobs.services import embedding_run_create, embedding_run_fail, embedding_run_plan
from search.models import Embedding, EmbeddingFailure, Feature

logger = logging.getLogger(__name__)

_local = threading.local()
_broker_down_until = 0.0
# After a failed publish, skip the broker for this long: a big import does not wait on every row.
BROKER_BACKOFF_S = 30.0


def task_batch_size() -> int:
    return max(1, int(settings.GALLERY_EMBED_TASK_BATCH))


def images_changed(*, ids: list[int]) -> None:
    """Forget the vectors of the old images of `ids` and queue the new ones: when the current
    transaction commits, or, inside `embedding_batch()`, as soon as a full batch is collected."""
    forget_stale_vectors(ids=ids)
    pending = getattr(_local, "pending", None)
    if pending is not None:
        # Queue each full batch as soon as it is complete, so that workers embed while a long
        # import is still running; the rest goes at the block's end.
        pending.extend(ids)
        if len(pending) >= task_batch_size():
            queue_embedding(ids=pending)  # committed already: the change is signalled on commit
            pending.clear()
        return
    transaction.on_commit(lambda: queue_embedding(ids=ids))


def forget_stale_vectors(*, ids: Iterable[int]) -> int:
    """Delete vectors (of every feature) computed from an image the artwork no longer has, and
    the failures recorded for the old image."""
    ids = list(ids)
    deleted, _ = (
        Embedding.objects.filter(artwork_id__in=ids)
        .exclude(image_sha256=F("artwork__image_sha256"))
        .delete()
    )
    EmbeddingFailure.objects.filter(artwork_id__in=ids).delete()
    return deleted


@contextmanager
def embedding_batch() -> Iterator[None]:
    """Collect the ids of every image changed inside the block and queue them in full batches
    (importers: one task per batch of artworks instead of one per artwork)."""
    outer = getattr(_local, "pending", None)
    if outer is not None:
        yield
        return
    _local.pending = []
    try:
        yield
    finally:
        ids, _local.pending = _local.pending, None
        # These ids were collected from on-commit signals: they are committed already.
        queue_embedding(ids=ids)


def queue_embedding(*, ids: Iterable[int], replace: bool = False) -> int:
    """Queue `ids` on the `embed` queue in batches. Returns the number of tasks queued; 0 when
    the broker is unreachable (logged; `manage.py embed --missing` catches up)."""
    global _broker_down_until
    from search.tasks import embed_artworks

    ids = list(dict.fromkeys(ids))
    if not ids:
        return 0
    if time.monotonic() < _broker_down_until:
        logger.warning("Broker down: %d artwork(s) not queued for embedding", len(ids))
        return 0
    size = task_batch_size()
    queued = 0
    try:
        for start in range(0, len(ids), size):
            embed_artworks.apply_async(
                args=[ids[start : start + size]],
                kwargs={"replace": replace},
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5},
            )
            queued += 1
    except Exception as exc:  # kombu/redis raise many types; none may break an import
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_S
        logger.error(
            "Could not queue embeddings for %d artwork(s) (%s); run `manage.py embed --missing` "
            "when the broker is back.",
            len(ids) - queued * size,
            exc,
        )
    return queued


def reset_broker_backoff() -> None:
    global _broker_down_until
    _broker_down_until = 0.0


# Embedding runs --------------------------------------------------------------------------------
START_QUEUE = "default"


def start_run(*, job: Job) -> None:
    """Queue the run's start task once the transaction that created the job commits (the start
    task picks the artworks and queues the batches: never a request's work). A broker that
    cannot be reached fails the job with a message saying so."""

    def send() -> None:
        from search.tasks import start_embedding_run

        try:
            start_embedding_run.apply_async(args=[job.pk], queue=START_QUEUE, retry=False)
        except Exception as exc:  # kombu and redis raise many types; the job must say why
            logger.error("could not queue embedding run %s: %s", job.pk, exc)
            _unqueued(job_id=job.pk, exc=exc)

    transaction.on_commit(send)


def _unqueued(*, job_id: int, exc: Exception) -> None:
    embedding_run_fail(
        job_id=job_id,
        message=f"The run could not be queued (the broker is unreachable: {exc}). "
        "Retry it once the broker is back.",
    )


def run_artworks(*, job: Job) -> list[int]:
    """The artworks a run covers: its own list, or what its feature lacks now."""
    from search.features import missing_artworks, target_feature

    if job.parameters.get("scope") == "ids":
        return [int(i) for i in job.parameters.get("ids", [])]
    feature_id = job.parameters.get("feature_id")
    feature = Feature.objects.filter(pk=feature_id).first() if feature_id else target_feature()
    if feature is None:
        return []
    return list(missing_artworks(feature).order_by("pk").values_list("pk", flat=True))


def plan_and_queue_run(*, job_id: int) -> int:
    """Start a run: its batches are planned once (a start task delivered twice finds them) and
    those not yet counted are queued. Returns the number of batches queued."""
    from search.features import finish_run_if_complete

    job = Job.objects.filter(pk=job_id, kind=Job.Kind.EMBEDDING).first()
    if job is None or job.is_final:
        return 0
    ids = run_artworks(job=job) if job.total is None else []
    batches = embedding_run_plan(job=job, ids=ids, batch_size=task_batch_size())
    if not batches:
        finish_run_if_complete(job_id=job.pk)  # nothing to embed: done (and activated) now
        return 0
    return queue_run_batches(job_id=job.pk, numbers=[b.number for b in batches if not b.counted])


def queue_run_batches(*, job_id: int, numbers: list[int]) -> int:
    """Publish the run's batches `numbers` on the `embed` queue. Returns how many were queued;
    a broker failure fails the run, saying why."""
    from search.tasks import embed_artworks

    job = Job.objects.filter(pk=job_id).first()
    if job is None or not numbers:
        return 0
    parameters = job.parameters
    rows = JobBatch.objects.filter(job_id=job_id, number__in=numbers).order_by("number")
    queued = 0
    try:
        for number, ids in rows.values_list("number", "artwork_ids"):
            embed_artworks.apply_async(
                args=[ids],
                kwargs={
                    "replace": bool(parameters.get("replace")),
                    "feature_id": parameters.get("feature_id"),
                    "job_id": job_id,
                    "batch": number,
                },
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5},
            )
            queued += 1
    except Exception as exc:  # kombu/redis raise many types; the run must say why
        logger.error("could not queue the batches of embedding run %s: %s", job_id, exc)
        _unqueued(job_id=job_id, exc=exc)
    return queued


def queue_reembed(*, ids: Iterable[int], user: User | AnonymousUser | None) -> int:
    """Recompute the vectors of `ids` under the features they are searched with, as an
    embedding run started by `user` (followed on the jobs page). Returns the number of batches
    queued; 0 when the broker is unreachable (the run says so)."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return 0
    job = embedding_run_create(
        feature_id=None, feature_name="", checkpoint="", activate=False, ids=ids, replace=True,
        user=user,
    )  # fmt: skip
    batches = embedding_run_plan(job=job, ids=ids, batch_size=task_batch_size())
    return queue_run_batches(job_id=job.pk, numbers=[b.number for b in batches])
