"""Queueing embeddings: the ids of artworks whose image is new or changed go on the `embed`
queue in batches of GALLERY_EMBED_TASK_BATCH.

The old vectors of a changed image are deleted at once (they describe a picture that is gone),
then the ids are queued. A broker that is down never breaks an import: the failure is logged and
`manage.py embed --missing` catches up later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import transaction
from django.db.models import F

from search.models import Embedding, EmbeddingFailure

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
