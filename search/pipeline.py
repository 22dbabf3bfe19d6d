"""Embedding artworks: decode + preprocess in threads, the model in batches, rows into pgvector.

A producer/consumer pipeline: a thread pool reads and decodes images and turns them into pixel
tensors, staying up to two model batches ahead, while this thread runs the model and inserts the
vectors. The model therefore never waits for JPEG decoding, and a batch's rows are committed as
soon as they are computed (a worker killed mid-task keeps what it finished).

Safe to run twice, concurrently, or after a crash: artworks that already have a current vector
are skipped, and the insert is keyed on (artwork, feature) with ON CONFLICT, so every artwork ends
up with exactly one vector per feature. A vector is only written while the artwork still has the
image it was computed from.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection

from gallery.images import ImageError, load_image
from gallery.jobs.services import (
    embedding_batch_count,
    embedding_run_accepts_work,
    embedding_run_fail,
)
from gallery.models import Artwork
from search.encoder import Encoder, EncoderLoadError, get_encoder
from search.features import (
    FeatureMismatch,
    activate_first_feature,
    encoder_for,
    encoder_for_feature,
    feature_for,
    features_being_filled,
    finish_run_if_complete,
    group_by_model,
    target_feature,
)
from search.models import Embedding, EmbeddingFailure, Feature
from search.vector_adapters import as_halfvec, vector_cursor

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@dataclass
class EmbedReport:
    embedded: int = 0
    skipped: int = 0  # already had a current vector, or no image
    failed: int = 0
    # Computed but not written: the image changed meanwhile, or another worker wrote it first.
    not_written: int = 0
    failures: dict[int, str] = field(default_factory=dict)

    def merge(self, other: EmbedReport) -> None:
        self.embedded += other.embedded
        self.skipped += other.skipped
        self.failed += other.failed
        self.not_written += other.not_written
        self.failures.update(other.failures)


@dataclass(frozen=True)
class Item:
    artwork_id: int
    image_name: str
    image_sha256: str


@dataclass(frozen=True)
class Prepared:
    item: Item
    pixels: torch.Tensor | None
    error: str | None = None


def model_batch_size(encoder: Encoder) -> int:
    configured = settings.GALLERY_EMBED_MODEL_BATCH
    if configured is None:
        return 16 if encoder.device.type == "cpu" else 64
    return max(1, int(configured))


def decode_threads() -> int:
    configured = settings.GALLERY_EMBED_DECODE_THREADS
    if configured is None:
        return min(4, os.cpu_count() or 1)
    return max(1, int(configured))


def embed_batch(
    *,
    ids: list[int],
    replace: bool = False,
    feature_id: int | None = None,
    job_id: int | None = None,
    batch: int | None = None,
) -> EmbedReport | None:
    """What a worker runs for one queued batch: for the feature `feature_id` (its checkpoint is
    loaded), else for the features the artworks are searched with. A batch of an embedding run
    first checks in the database that its run still wants it (a cancelled run's queued batches
    do nothing: None), and afterwards counts its outcome into the run once."""
    if job_id is not None and not embedding_run_accepts_work(job_id=job_id):
        logger.info("Batch %s of embedding run %s skipped: the run was stopped", batch, job_id)
        return None
    if feature_id is None:
        report = embed_artworks(ids=ids, replace=replace)
    else:
        feature = Feature.objects.filter(pk=feature_id).first()
        try:
            if feature is None:
                raise EncoderLoadError(f"the feature {feature_id} was deleted")
            encoder = encoder_for_feature(feature)
        except (EncoderLoadError, FeatureMismatch) as exc:
            if job_id is None:
                raise
            embedding_run_fail(job_id=job_id, message=f"A worker cannot embed this run: {exc}")
            return None
        report = embed_artworks(ids=ids, encoder=encoder, feature=feature, replace=replace)
    if job_id is not None and batch is not None:
        embedding_batch_count(job_id=job_id, number=batch, failures=report.failures)
        added = finish_run_if_complete(job_id=job_id)
        if added:
            from search.queueing import queue_run_batches

            queue_run_batches(job_id=job_id, numbers=added)
    return report


def embed_artworks(
    *,
    ids: Iterable[int],
    encoder: Encoder | None = None,
    feature: Feature | None = None,
    replace: bool = False,
    batch_size: int | None = None,
    threads: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> EmbedReport:
    """Compute and store vectors for the artworks `ids` under `feature` (with its checkpoint,
    unless an `encoder` is given; given only an encoder, under the encoder's feature). `replace`
    recomputes vectors that are already current. Given neither, each artwork is embedded with
    the model of its collection's feature extractor: the default checkpoint's collections under
    the active feature and under any feature an embedding run is filling; and the first
    feature becomes active once complete when none is yet."""
    if encoder is None and feature is None:
        report = EmbedReport()
        for location, group in group_by_model(list(ids)).items():
            if location is None:
                for target, target_encoder in _default_targets():
                    part = embed_artworks(
                        ids=group,
                        encoder=target_encoder,
                        feature=target,
                        replace=replace,
                        batch_size=batch_size,
                        threads=threads,
                        on_progress=on_progress,
                    )
                    report.merge(part)
                continue
            try:
                group_encoder = encoder_for(location)
            except EncoderLoadError as exc:
                # One collection's model is missing: the other collections still get embedded.
                logger.error("Collection model %s cannot be loaded: %s", location, exc)
                report.failed += len(group)
                report.failures.update(dict.fromkeys(group, f"The model cannot be loaded: {exc}"))
                continue
            part = embed_artworks(
                ids=group,
                encoder=group_encoder,
                replace=replace,
                batch_size=batch_size,
                threads=threads,
                on_progress=on_progress,
            )
            report.merge(part)
        activate_first_feature()
        return report
    if encoder is None:
        assert feature is not None
        encoder = encoder_for_feature(feature)
    feature = feature or feature_for(encoder)
    batch_size = batch_size or model_batch_size(encoder)
    report = EmbedReport()
    items = _items(list(ids), feature=feature, replace=replace, report=report)
    with ThreadPoolExecutor(
        threads or decode_threads(), thread_name_prefix="embed-decode", initializer=_yield_to_model
    ) as pool:
        batch: list[Prepared] = []
        for prepared in _prefetch(pool, items, encoder=encoder, ahead=2 * batch_size):
            if prepared.error is not None:
                _record_failure(prepared.item, feature=feature, reason=prepared.error)
                report.failed += 1
                report.failures[prepared.item.artwork_id] = prepared.error
                if on_progress:
                    on_progress(1)
                continue
            batch.append(prepared)
            if len(batch) >= batch_size:
                _embed_batch(
                    batch, encoder=encoder, feature=feature, replace=replace, report=report
                )
                if on_progress:
                    on_progress(len(batch))
                batch = []
        if batch:
            _embed_batch(batch, encoder=encoder, feature=feature, replace=replace, report=report)
            if on_progress:
                on_progress(len(batch))
    return report


def _default_targets() -> list[tuple[Feature, Encoder]]:
    """The features the default checkpoint's collections are embedded under, with their
    encoders: the searched one (the first one, none being active yet: a checkpoint that cannot
    load is the worker's misconfiguration and raises), and those being filled (one that cannot
    load here is left out; its own run reports it)."""
    searched = target_feature()
    encoder = encoder_for_feature(searched) if searched.is_active else get_encoder()
    targets = [(searched, encoder)]
    for feature in features_being_filled():
        if feature.pk == searched.pk:
            continue
        try:
            targets.append((feature, encoder_for_feature(feature)))
        except (EncoderLoadError, FeatureMismatch) as exc:
            logger.error("Feature %s is not embedded here: %s", feature, exc)
    return targets


def _yield_to_model() -> None:
    """Decoding threads run at a lower CPU priority (Linux: per thread). On a CPU-only machine
    torch's threads occupy every core and wait for each other at every operator, so a decoder
    that preempts one of them stalls them all; at low priority it fills their idle gaps, and its
    two-batch head start covers the rest."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _items(
    ids: list[int], *, feature: Feature, replace: bool, report: EmbedReport
) -> Iterator[Item]:
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        queryset = Artwork.objects.filter(pk__in=chunk).exclude(image="")
        rows = list(queryset.only("pk", "image", "image_sha256"))
        if not replace:  # skip artworks whose current image already has a vector
            done = set(
                Embedding.objects.filter(artwork__in=chunk, feature=feature).values_list(
                    "artwork_id", "image_sha256"
                )
            )
            rows = [r for r in rows if (r.pk, r.image_sha256) not in done]
        report.skipped += len(chunk) - len(rows)
        order = {pk: n for n, pk in enumerate(chunk)}
        for row in sorted(rows, key=lambda r: order[r.pk]):
            yield Item(
                artwork_id=row.pk, image_name=row.image.name or "", image_sha256=row.image_sha256
            )


def _prefetch(
    pool: ThreadPoolExecutor, items: Iterator[Item], *, encoder: Encoder, ahead: int
) -> Iterator[Prepared]:
    """Yield prepared items in order, keeping up to `ahead` of them decoding in the pool."""
    pending: deque[Future[Prepared]] = deque()
    for item in items:
        pending.append(pool.submit(prepare, item, encoder=encoder))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def prepare(item: Item, *, encoder: Encoder) -> Prepared:
    """Read, safely decode and preprocess one image (runs in a decoding thread)."""
    try:
        with default_storage.open(item.image_name, "rb") as fh:
            data = fh.read()
        image = load_image(data).image
        pixels = encoder.preprocess_images([image])[0]
    except ImageError as exc:
        return Prepared(item, None, f"The image cannot be decoded: {exc}")
    except FileNotFoundError:
        return Prepared(item, None, f"The image file {item.image_name} is missing.")
    except OSError as exc:
        return Prepared(item, None, f"The image file cannot be read: {exc}")
    return Prepared(item, pixels)


def _embed_batch(
    batch: list[Prepared], *, encoder: Encoder, feature: Feature, replace: bool, report: EmbedReport
) -> None:
    import torch

    pixels = torch.stack([p.pixels for p in batch if p.pixels is not None])
    vectors = encoder.encode_pixels(pixels)
    written = insert_vectors(
        feature=feature, items=[p.item for p in batch], vectors=vectors, replace=replace
    )
    report.embedded += len(written)
    report.not_written += len(batch) - len(written)
    if written:
        EmbeddingFailure.objects.filter(feature=feature, artwork_id__in=written).delete()


def insert_vectors(
    *, feature: Feature, items: list[Item], vectors: np.ndarray, replace: bool = False
) -> list[int]:
    """Insert one vector per item, only while the artwork still has that image; an existing
    vector is kept unless it is stale (another image) or `replace`. Returns the ids written."""
    embedding = Embedding._meta.db_table
    artwork = Artwork._meta.db_table
    sql = f"""
        INSERT INTO {embedding} (artwork_id, feature_id, vector, image_sha256, created_at)
        SELECT a.id, %s, v.vector, a.image_sha256, now()
        FROM unnest(%s::bigint[], %s::text[], %s::halfvec[]) AS v(artwork_id, sha, vector)
        JOIN {artwork} a ON a.id = v.artwork_id AND a.image_sha256 = v.sha
        ON CONFLICT (artwork_id, feature_id) DO UPDATE
            SET vector = EXCLUDED.vector, image_sha256 = EXCLUDED.image_sha256,
                created_at = EXCLUDED.created_at
            WHERE %s OR {embedding}.image_sha256 IS DISTINCT FROM EXCLUDED.image_sha256
        RETURNING artwork_id
    """
    params: list[Any] = [
        feature.pk,
        [i.artwork_id for i in items],
        [i.image_sha256 for i in items],
        [as_halfvec(row) for row in vectors],
        replace,
    ]
    with vector_cursor() as cursor:
        cursor.execute(sql, params)
        written = [row[0] for row in cursor.fetchall()]
    return written


def _record_failure(item: Item, *, feature: Feature, reason: str) -> None:
    logger.warning("Artwork %s not embedded: %s", item.artwork_id, reason)
    table = EmbeddingFailure._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (artwork_id, feature_id, reason, attempts, failed_at)
            SELECT %s, %s, %s, 1, now() WHERE EXISTS (SELECT 1 FROM {Artwork._meta.db_table}
                                                      WHERE id = %s)
            ON CONFLICT (artwork_id, feature_id) DO UPDATE
                SET reason = EXCLUDED.reason, attempts = {table}.attempts + 1, failed_at = now()
            """,
            [item.artwork_id, feature.pk, reason, item.artwork_id],
        )
