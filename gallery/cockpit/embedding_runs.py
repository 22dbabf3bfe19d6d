"""Embeddings as the jobs page shows them: per feature, its current vectors, the artworks it
still lacks, its failures, and the recent throughput (vectors written in the last few minutes)
with the time left at that pace; these rows follow imports' embedding by what is in the
database. What a curator starts (a new feature, the missing or failed ones of a feature) is an
embedding run: a job of its own on the same page (search/queueing.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from gallery.jobs.models import Job
from gallery.jobs.services import embedding_run_create
from search.features import feature_create, missing_artworks
from search.models import EmbeddingFailure, Feature
from search.queueing import start_run

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


def queue_missing(*, feature: Feature, user: User | AnonymousUser | None) -> Job:
    """An embedding run over every artwork the feature lacks when it starts (what `manage.py
    embed --missing` does); queued when the caller's transaction commits."""
    return _run(feature=feature, ids=None, activate=False, user=user)


def queue_failed(*, feature: Feature, user: User | AnonymousUser | None) -> Job:
    """An embedding run over the artworks whose embedding failed under the feature."""
    ids = list(
        EmbeddingFailure.objects.filter(feature=feature)
        .order_by("artwork_id")
        .values_list("artwork_id", flat=True)
    )
    return _run(feature=feature, ids=ids, activate=False, user=user)


def build_feature(
    *, checkpoint: str, name: str, activate: bool, user: User | AnonymousUser | None
) -> tuple[Feature, Job]:
    """A new feature from `checkpoint` (checked offline; FeatureCheckError says which input is
    wrong) and the run that fills it, switched to when complete if `activate`."""
    with transaction.atomic():
        feature = feature_create(checkpoint=checkpoint, name=name)
        job = _run(feature=feature, ids=None, activate=activate, user=user)
    return feature, job


def _run(
    *, feature: Feature, ids: list[int] | None, activate: bool, user: User | AnonymousUser | None
) -> Job:
    with transaction.atomic():
        job = embedding_run_create(
            feature_id=feature.pk,
            feature_name=feature.name,
            checkpoint=feature.model_name,
            activate=activate,
            ids=ids,
            user=user,
        )
        start_run(job=job)
    return job
