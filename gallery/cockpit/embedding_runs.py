"""Embedding runs as the jobs page shows them: per feature, its current vectors, the artworks it
still lacks, its failures, and the recent throughput (vectors written in the last few minutes)
with the time left at that pace. Embedding work is queued per batch by imports and edits; these
rows follow it by what is in the database, so they need no bookkeeping in the workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, F, Q
from django.utils import timezone

from search.features import missing_artworks
from search.models import EmbeddingFailure, Feature
from search.queueing import queue_embedding

RATE_WINDOW = timedelta(minutes=5)


@dataclass(frozen=True)
class EmbeddingRun:
    feature: Feature
    done: int
    missing: int
    failed: int
    per_second: float | None  # vectors written per second over RATE_WINDOW; None when none

    @property
    def time_left(self) -> timedelta | None:
        if not self.per_second or not self.missing:
            return None
        return timedelta(seconds=round(self.missing / self.per_second))

    @property
    def busy(self) -> bool:
        return self.per_second is not None


def embedding_runs() -> list[EmbeddingRun]:
    since = timezone.now() - RATE_WINDOW
    current = Q(embeddings__image_sha256=F("embeddings__artwork__image_sha256"))
    features = Feature.objects.annotate(
        done=Count("embeddings", filter=current),
        recent=Count("embeddings", filter=Q(embeddings__created_at__gte=since)),
    ).order_by("-is_active", "-created_at")
    failed = dict(
        EmbeddingFailure.objects.values_list("feature")
        .annotate(n=Count("pk"))
        .values_list("feature", "n")
    )
    return [
        EmbeddingRun(
            feature=feature,
            done=feature.done,  # type: ignore[attr-defined]
            missing=missing_artworks(feature).count(),
            failed=failed.get(feature.pk, 0),
            per_second=(feature.recent / RATE_WINDOW.total_seconds()) or None,  # type: ignore[attr-defined]
        )
        for feature in features
    ]


def queue_missing(*, feature: Feature) -> int | None:
    """Queue every artwork the feature lacks (what `manage.py embed --missing` does); returns
    how many, None when the broker could not be reached. Each is embedded with its collection's
    model."""
    return _queue(list(missing_artworks(feature).values_list("pk", flat=True)))


def queue_failed(*, feature: Feature) -> int | None:
    """Queue again the artworks whose embedding failed under the feature; returns how many,
    None when the broker could not be reached."""
    return _queue(
        list(EmbeddingFailure.objects.filter(feature=feature).values_list("artwork_id", flat=True))
    )


def _queue(ids: list[int]) -> int | None:
    if not ids:
        return 0
    return len(ids) if queue_embedding(ids=ids) else None
