"""What a retrieval is asked: the inputs, as the API and the pages hand them over."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from django.conf import settings

from gallery.images import mebibytes
from search.errors import BadImage, ImageTooLarge


@dataclass(frozen=True)
class DocRef:
    """A document reference: an artwork, optionally with the collection it must belong to."""

    document_id: int | None = None
    collection_id: str = ""  # a collection's name or id


@dataclass(frozen=True)
class Region:
    """A box on a picture, relative to its size (0..1, origin top-left): a crop of the stored
    artwork `document_id`'s original file, or (None) of the uploaded image."""

    x: float
    y: float
    width: float
    height: float
    document_id: int | None = None

    def box(self) -> tuple[float, float, float, float]:
        """(x, y, width, height) rounded to 4 decimals: what identifies the crop."""
        return (
            round(self.x, 4),
            round(self.y, 4),
            round(self.width, 4),
            round(self.height, 4),
        )


@dataclass(frozen=True)
class RetrievalInputs:
    text: str = ""
    image: bytes | None = None
    document_id: int | None = None
    keywords: str = ""
    doc_ref: DocRef | None = None
    references: tuple[int, ...] = ()  # more artworks "like these", each its own search
    negatives: tuple[int, ...] = ()  # artworks marked "less like this"
    negative_image: bytes | None = None  # an upload marked "less like this"
    region: Region | None = None  # search by a region of the upload or of a stored artwork

    def document(self) -> DocRef:
        """The one "find similar" input, whichever name it came under: the bare `document_id`
        and `doc_ref.document_id` fill either template."""
        ref = self.doc_ref or DocRef()
        if ref.document_id is None and self.document_id is not None:
            return DocRef(document_id=self.document_id, collection_id=ref.collection_id)
        return ref


def normalise_text(text: str) -> str:
    """Trimmed, whitespace collapsed, case-folded: "  Blue   SKY " and "blue sky" are one query."""
    return " ".join(text.split()).casefold()


def decode_base64_image(value: str) -> bytes:
    """Bytes of a base64 image (a bare string or a data: URL); BadImage/ImageTooLarge if not."""
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    limit = settings.GALLERY_MAX_UPLOAD_BYTES
    if len(value) > (limit // 3 + 1) * 4 + 4:
        raise ImageTooLarge(f"The image is larger than the {mebibytes(limit)} limit.")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadImage("The image is not valid base64.") from exc
