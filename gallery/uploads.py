"""Query images: a visitor's upload kept briefly under a random id, so a search by image has a URL.

The bytes are validated with `load_image` before anything is written, stored in
GALLERY_QUERY_UPLOAD_DIR/<id> (outside MEDIA_ROOT) beside a small WebP preview, and deleted after
GALLERY_QUERY_UPLOAD_TTL seconds (expired files are purged whenever a new upload arrives).
They are never added to the collection.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from gallery.images import load_image, thumbnail_bytes

PREVIEW_SIZE = 160
_ID_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass(frozen=True)
class QueryUpload:
    upload_id: str
    data: bytes


def upload_ttl() -> int:
    return int(settings.GALLERY_QUERY_UPLOAD_TTL)


def upload_dir() -> Path:
    """Outside MEDIA_ROOT on purpose: a visitor's query image is never served as a media file;
    only its preview is, through the view that checks the id and the expiry."""
    configured = settings.GALLERY_QUERY_UPLOAD_DIR
    return Path(configured) if configured else Path(settings.MEDIA_ROOT).parent / "query-uploads"


def is_upload_id(value: str) -> bool:
    """A well-formed id (it also keeps path separators and dots out of file names).

    fullmatch, not match with "$": "$" also matches before a trailing newline."""
    return bool(_ID_RE.fullmatch(value))


def upload_store(*, data: bytes) -> QueryUpload:
    """Validate and keep `data`; raises gallery.images.ImageError with a readable message."""
    # Refuses non-images, bombs, truncation before anything is written; only a preview is made.
    loaded = load_image(data, reduce_to=PREVIEW_SIZE)
    uploads_purge()
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    upload_id = secrets.token_urlsafe(18)  # 144 random bits: not guessable, not enumerable
    (folder / f"{upload_id}.webp").write_bytes(thumbnail_bytes(loaded.image, size=PREVIEW_SIZE))
    # The original last: an id whose original exists is complete.
    (folder / upload_id).write_bytes(data)
    return QueryUpload(upload_id=upload_id, data=data)


def upload_load(*, upload_id: str) -> QueryUpload | None:
    """The upload's bytes, or None when the id is malformed, unknown or expired."""
    path = _fresh_path(upload_id)
    if path is None:
        return None
    try:
        return QueryUpload(upload_id=upload_id, data=path.read_bytes())
    except FileNotFoundError:  # purged between the check and the read
        return None


def upload_preview(*, upload_id: str) -> bytes | None:
    """The WebP preview of a live upload, or None."""
    if _fresh_path(upload_id) is None:
        return None
    try:
        return (upload_dir() / f"{upload_id}.webp").read_bytes()
    except FileNotFoundError:
        return None


def uploads_purge(*, now: float | None = None) -> int:
    """Delete expired uploads and previews; returns how many files went."""
    folder = upload_dir()
    if not folder.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - upload_ttl()
    removed = 0
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another process purged it first
            continue
    return removed


def _fresh_path(upload_id: str) -> Path | None:
    if not is_upload_id(upload_id):
        return None
    path = upload_dir() / upload_id
    try:
        if path.stat().st_mtime < time.time() - upload_ttl():
            return None
    except FileNotFoundError:
        return None
    return path
