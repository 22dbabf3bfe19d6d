"""Writing artworks: the one path every importer and the admin use."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.core.files.base import ContentFile
from django.db import transaction
from django.dispatch import Signal

from gallery.extractors import ExtractorConfigError, parse_collection_config, parse_extractor
from gallery.images import (
    ImageError,
    LoadedImage,
    load_image,
    original_bytes,
    sha256_bytes,
    thumbnail_bytes,
)
from gallery.models import Artwork, Collection, default_collection_id

logger = logging.getLogger(__name__)

# Sent on commit with `ids` (a list of artwork ids) whose image is new or changed; the search
# app listens and queues their embeddings.
artwork_images_changed = Signal()

# Metadata fields an importer may set; anything else in a record is ignored.
METADATA_FIELDS = (
    "title",
    "artist",
    "display_date",
    "begin_year",
    "end_year",
    "medium",
    "dimensions",
    "classification",
    "credit_line",
    "description",
    "alt_text",
    "source_url",
    "license",
)

Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class UpsertResult:
    artwork: Artwork
    outcome: Outcome
    image_changed: bool


def collection_create(*, name: str, config: Mapping[str, Any], description: str = "") -> Collection:
    """Create a collection from its configuration as the case study prints it
    ({"feature_extractor": {...}}). Raises ExtractorConfigError naming each bad field."""
    extractor = parse_collection_config(config)
    collection = Collection(
        name=name, description=description, feature_extractor=extractor.model_dump()
    )
    collection.full_clean()
    collection.save()
    return collection


def collection_named(name: str) -> Collection:
    """The collection `name` (or numeric id); LookupError listing the collections if none."""
    found = Collection.objects.filter(name=name).first()
    if found is None and name.isdigit():
        found = Collection.objects.filter(pk=int(name)).first()
    if found is None:
        known = ", ".join(Collection.objects.values_list("name", flat=True)) or "none"
        raise LookupError(f"There is no collection {name!r} (collections: {known}).")
    return found


def artwork_upsert(
    *,
    source: str,
    external_id: str,
    metadata: Mapping[str, Any],
    image_data: bytes | None,
    collection: Collection | None = None,
) -> UpsertResult:
    """Create or update one artwork of `collection` (default: the default collection) from its
    record and image bytes, atomically.

    The image is decoded (and refused with ImageError) before anything is written. A record
    whose metadata and image hash are unchanged is left alone, so re-running an import is a
    no-op. `image_data=None` keeps the stored image (metadata-only update).
    """
    collection_id = collection.pk if collection is not None else default_collection_id()
    thumbnails = _makes_thumbnails(collection_id, collection)
    loaded = None
    if image_data is not None and sha256_bytes(image_data) != _stored_sha256(
        collection_id, source, external_id
    ):
        # Decode only a new or changed image: a re-run over unchanged files costs a hash each.
        loaded = load_image(image_data)
    fields = {name: _clean(name, metadata[name]) for name in METADATA_FIELDS if name in metadata}

    new_files: list[str] = []
    key = _Key(collection_id=collection_id, source=source, external_id=external_id)
    try:
        result = _upsert_locked(key, fields, loaded, image_data, new_files, thumbnails)
    except BaseException:
        _delete_files(new_files, keep=None)  # nothing half-written: drop files of a failed write
        raise
    return result


@dataclass(frozen=True)
class _Key:
    collection_id: int
    source: str
    external_id: str


def _makes_thumbnails(collection_id: int, collection: Collection | None) -> bool:
    """The collection extractor's `generate_thumbnail` (on when unreadable: pages need them)."""
    stored = (
        collection.feature_extractor
        if collection is not None
        else Collection.objects.filter(pk=collection_id)
        .values_list("feature_extractor", flat=True)
        .first()
    )
    try:
        return parse_extractor(stored).parameters.generate_thumbnail
    except ExtractorConfigError:
        return True


def _stored_sha256(collection_id: int, source: str, external_id: str) -> str | None:
    return (
        Artwork.objects.filter(collection_id=collection_id, source=source, external_id=external_id)
        .values_list("image_sha256", flat=True)
        .first()
    )


def _upsert_locked(
    key: _Key,
    fields: dict[str, Any],
    loaded: LoadedImage | None,
    image_data: bytes | None,
    new_files: list[str],
    thumbnails: bool,
) -> UpsertResult:
    source, external_id = key.source, key.external_id
    with transaction.atomic():
        artwork = (
            Artwork.objects.select_for_update()
            .filter(collection_id=key.collection_id, source=source, external_id=external_id)
            .first()
        )
        created = artwork is None
        if artwork is None:
            artwork = Artwork(
                collection_id=key.collection_id, source=source, external_id=external_id
            )
        changed_fields = [name for name, value in fields.items() if getattr(artwork, name) != value]
        for name in changed_fields:
            setattr(artwork, name, fields[name])

        image_changed = loaded is not None and loaded.sha256 != artwork.image_sha256
        if image_changed:
            assert loaded is not None and image_data is not None
            stored, ext = original_bytes(loaded, image_data)
            old_files = [f.name for f in (artwork.image, artwork.thumbnail) if f.name]
            name = f"{source}-{_safe(external_id)}-{loaded.sha256[:12]}"
            # Each new file is noted as soon as it exists, so a failure anywhere after it
            # (the thumbnail's write, the row's save) removes it again.
            artwork.image.save(f"{name}.{ext}", ContentFile(stored), save=False)
            new_files.append(str(artwork.image.name))
            if thumbnails:
                thumb = thumbnail_bytes(loaded.image)
                artwork.thumbnail.save(f"{name}.webp", ContentFile(thumb), save=False)
                new_files.append(str(artwork.thumbnail.name))
            else:
                artwork.thumbnail = None  # type: ignore[assignment]
            artwork.width, artwork.height = loaded.image.size
            artwork.image_sha256 = loaded.sha256
            transaction.on_commit(lambda: _delete_files(old_files, keep=artwork))

        if created or changed_fields or image_changed:
            artwork.save()
        if image_changed:
            artwork_id = artwork.pk
            transaction.on_commit(
                lambda: artwork_images_changed.send(sender=Artwork, ids=[artwork_id])
            )

    outcome: Outcome = (
        "created" if created else "updated" if (changed_fields or image_changed) else "unchanged"
    )
    return UpsertResult(artwork=artwork, outcome=outcome, image_changed=image_changed)


def artwork_save_with_image(*, artwork: Artwork, image_data: bytes) -> UpsertResult:
    """Save `artwork` as edited (a form's changes) with `image_data` as its new image, stored
    by `artwork_upsert` like an imported one (upright original, thumbnail, size, hash,
    re-embedding signal) rather than as the raw upload. `artwork` is refreshed afterwards."""
    previous = Artwork.objects.filter(pk=artwork.pk).first() if artwork.pk else None
    artwork.image = previous.image if previous else None  # type: ignore[assignment]
    artwork.save()
    result = artwork_upsert(
        source=artwork.source,
        external_id=artwork.external_id,
        metadata={},
        image_data=image_data,
        collection=artwork.collection,
    )
    artwork.refresh_from_db()
    return result


def artwork_save_without_image(*, artwork: Artwork) -> None:
    """Save `artwork` as edited, without an image: its stored original and thumbnail are deleted
    once the change commits, and the size and hash derived from them are cleared."""
    previous = Artwork.objects.filter(pk=artwork.pk).values_list("image", flat=True).first()
    stale = [name for name in (previous, artwork.thumbnail.name) if name]
    artwork.image = artwork.thumbnail = None  # type: ignore[assignment]
    artwork.width = artwork.height = None
    artwork.image_sha256 = ""
    artwork.save()
    transaction.on_commit(lambda: _delete_files(stale, keep=None))


def regenerate_thumbnails(*, artworks: Iterable[Artwork]) -> tuple[int, list[str]]:
    """Rebuild thumbnails from the stored originals. Returns (done, errors naming the record)."""
    done, errors = 0, []
    for artwork in artworks:
        try:
            if not artwork.image:
                raise ImageError("it has no image")
            with artwork.image.open("rb") as fh:
                loaded = load_image(fh.read())
            old = artwork.thumbnail.name if artwork.thumbnail else None
            artwork.thumbnail.save(
                f"{artwork.source}-{_safe(artwork.external_id)}-{loaded.sha256[:12]}.webp",
                ContentFile(thumbnail_bytes(loaded.image)),
                save=False,
            )
            artwork.save(update_fields=["thumbnail", "updated_at"])
            if old and old != artwork.thumbnail.name:
                artwork.thumbnail.storage.delete(old)
            done += 1
        except (ImageError, OSError) as exc:
            errors.append(f"{artwork.source}:{artwork.external_id} ({artwork}): {exc}")
    return done, errors


def _clean(name: str, value: Any) -> Any:
    if name in {"begin_year", "end_year"}:
        if value in (None, ""):
            return None
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None
    return "" if value is None else str(value).strip()


def _safe(external_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in external_id)[:80]


def _delete_files(names: list[str], *, keep: Artwork | None) -> None:
    from django.core.files.storage import default_storage

    current = {keep.image.name, keep.thumbnail.name} if keep else set()
    for name in names:
        if name and name not in current:
            default_storage.delete(name)
