"""Writing artworks: the one path every importer and the admin use."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.core.files.base import ContentFile
from django.db import transaction
from django.dispatch import Signal

from gallery.images import (
    ImageError,
    LoadedImage,
    load_image,
    original_bytes,
    sha256_bytes,
    thumbnail_bytes,
)
from gallery.models import Artwork

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


def artwork_upsert(
    *,
    source: str,
    external_id: str,
    metadata: Mapping[str, Any],
    image_data: bytes | None,
) -> UpsertResult:
    """Create or update one artwork from its record and image bytes, atomically.

    The image is decoded (and refused with ImageError) before anything is written. A record
    whose metadata and image hash are unchanged is left alone, so re-running an import is a
    no-op. `image_data=None` keeps the stored image (metadata-only update).
    """
    loaded = None
    if image_data is not None and sha256_bytes(image_data) != _stored_sha256(source, external_id):
        # Decode only a new or changed image: a re-run over unchanged files costs a hash each.
        loaded = load_image(image_data)
    fields = {name: _clean(name, metadata[name]) for name in METADATA_FIELDS if name in metadata}

    new_files: list[str] = []
    try:
        result = _upsert_locked(source, external_id, fields, loaded, image_data, new_files)
    except BaseException:
        _delete_files(new_files, keep=None)  # nothing half-written: drop files of a failed write
        raise
    return result


def _stored_sha256(source: str, external_id: str) -> str | None:
    return (
        Artwork.objects.filter(source=source, external_id=external_id)
        .values_list("image_sha256", flat=True)
        .first()
    )


def _upsert_locked(
    source: str,
    external_id: str,
    fields: dict[str, Any],
    loaded: LoadedImage | None,
    image_data: bytes | None,
    new_files: list[str],
) -> UpsertResult:
    with transaction.atomic():
        artwork = (
            Artwork.objects.select_for_update()
            .filter(source=source, external_id=external_id)
            .first()
        )
        created = artwork is None
        if artwork is None:
            artwork = Artwork(source=source, external_id=external_id)
        changed_fields = [name for name, value in fields.items() if getattr(artwork, name) != value]
        for name in changed_fields:
            setattr(artwork, name, fields[name])

        image_changed = loaded is not None and loaded.sha256 != artwork.image_sha256
        if image_changed:
            assert loaded is not None and image_data is not None
            stored, ext = original_bytes(loaded, image_data)
            old_files = [f.name for f in (artwork.image, artwork.thumbnail) if f.name]
            name = f"{source}-{_safe(external_id)}-{loaded.sha256[:12]}"
            thumb = thumbnail_bytes(loaded.image)
            # Each new file is noted as soon as it exists, so a failure anywhere after it
            # (the thumbnail's write, the row's save) removes it again.
            artwork.image.save(f"{name}.{ext}", ContentFile(stored), save=False)
            new_files.append(str(artwork.image.name))
            artwork.thumbnail.save(f"{name}.webp", ContentFile(thumb), save=False)
            new_files.append(str(artwork.thumbnail.name))
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
