"""Safe image decoding and the derived files made at ingest.

Every image that enters the system (an import, an admin upload, a query upload) passes through
`load_image`, which refuses non-images, truncated files, decompression bombs and animations
with an `ImageError` naming the problem, and returns an upright RGB picture.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)


def apply_pixel_limit() -> None:
    """Pillow's own bomb guard (a warning above the limit, an error above twice it) at our limit,
    for every code path of the process; load_image checks the size itself first, with a clearer
    message. Called once when the app is ready (gallery/apps.py), never at import."""
    Image.MAX_IMAGE_PIXELS = settings.GALLERY_MAX_IMAGE_PIXELS


class ImageError(ValueError):
    """An image that cannot be accepted; the message says why, for a person to read."""


@dataclass(frozen=True)
class LoadedImage:
    image: Image.Image  # upright, RGB, fully decoded
    sha256: str  # of the bytes as received
    format: str  # the container format Pillow found (JPEG, PNG, ...)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_image(
    data: bytes,
    *,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
    allow_animated: bool = False,
    reduce_to: int | None = None,
) -> LoadedImage:
    """Decode `data` into an upright RGB image, or raise ImageError saying what is wrong.

    The pixel count is checked from the header, before anything is decoded. With `reduce_to`,
    a JPEG is decoded at the smallest of its built-in scales (1/2, 1/4, 1/8) whose sides are
    still at least `reduce_to` pixels: for a caller that needs no more (a preview, the model's
    input) a large photograph then costs a fraction of the time and memory."""
    max_bytes = max_bytes or settings.GALLERY_MAX_UPLOAD_BYTES
    max_pixels = max_pixels or settings.GALLERY_MAX_IMAGE_PIXELS
    if not data:
        raise ImageError("The file is empty.")
    if len(data) > max_bytes:
        raise ImageError(too_many_bytes(size=len(data), limit=max_bytes))
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check runs in open(), from the header: ours must come first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            width, height = probe.size
            if width * height > max_pixels:
                raise ImageError(
                    too_many_pixels(pixels=width * height, limit=max_pixels, size=(width, height))
                )
            if getattr(probe, "n_frames", 1) > 1 and not allow_animated:
                raise ImageError("Animated images are not accepted; upload a single frame.")
            fmt = probe.format or "unknown"
            if reduce_to and fmt == "JPEG":
                probe.draft(probe.mode, (reduce_to, reduce_to))
            elif reduce_to:
                _check_full_decode(fmt=fmt, width=width, height=height, max_pixels=max_pixels)
            probe.load()  # decode fully now: truncated data fails here, not later
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageError(
            too_many_pixels(pixels=int(claimed.group(1)), limit=max_pixels)
            if claimed
            else f"The image has too many pixels; the limit is {megapixels(max_pixels)}."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            "The file is not an image we can read (JPEG, PNG, WebP, TIFF, BMP or GIF)."
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # The decoder's own words ("Truncated File Read", ...) mean nothing to a visitor: they
        # go to the log.
        logger.info("image refused as damaged: %s", exc)
        raise ImageError(
            "The image is damaged or incomplete (perhaps cut short while copying or "
            "uploading); try another copy of it."
        ) from exc
    return LoadedImage(image=to_rgb(probe), sha256=sha256_bytes(data), format=fmt)


def _check_full_decode(*, fmt: str, width: int, height: int, max_pixels: int) -> None:
    """Formats other than JPEG have no reduced-scale decoding: the whole picture is decoded, at
    several bytes a pixel. Where less is needed (a visitor's query image), their size has a lower
    limit of its own, so no accepted image costs much more than a JPEG at the pixel limit."""
    limit = min(settings.GALLERY_MAX_FULL_DECODE_PIXELS, max_pixels)
    if width * height > limit:
        decimals = _distinct_decimals(width * height / 1e6, limit / 1e6)
        raise ImageError(
            f"The image is {width}×{height} pixels, "
            f"{megapixels(width * height, decimals=decimals)}; a {fmt} image can be searched "
            f"with up to {megapixels(limit, decimals=decimals)} (a JPEG up to "
            f"{megapixels(max_pixels)}). Save it as a JPEG or make it smaller."
        )


def mebibytes(size: int, *, decimals: int = 1) -> str:
    return f"{size / 2**20:.{decimals}f} MiB"


def megapixels(pixels: int, *, decimals: int = 1) -> str:
    return f"{pixels / 1e6:,.{decimals}f} megapixels"


def too_many_bytes(*, size: int, limit: int) -> str:
    decimals = _distinct_decimals(size / 2**20, limit / 2**20)
    return (
        f"The file is {mebibytes(size, decimals=decimals)}; "
        f"the limit is {mebibytes(limit, decimals=decimals)}."
    )


def too_many_pixels(*, pixels: int, limit: int, size: tuple[int, int] | None = None) -> str:
    decimals = _distinct_decimals(pixels / 1e6, limit / 1e6)
    dimensions = f"{size[0]}×{size[1]} pixels, " if size else ""
    return (
        f"The image is {dimensions}{megapixels(pixels, decimals=decimals)}; "
        f"the limit is {megapixels(limit, decimals=decimals)}."
    )


def _distinct_decimals(value: float, limit: float) -> int:
    """One decimal, or as many more as it takes for a value over the limit not to read as it."""
    decimals = 1
    while decimals < 6 and f"{value:.{decimals}f}" == f"{limit:.{decimals}f}":
        decimals += 1
    return decimals


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright (EXIF orientation applied), 8-bit RGB; transparency is flattened onto white."""
    image = ImageOps.exif_transpose(image) or image
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        # 16/32-bit greyscale: scale to 8 bits instead of clipping (Pillow's convert clips).
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "LA", "PA"}:
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    if image.mode == "CMYK":
        return image.convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def thumbnail_bytes(image: Image.Image, *, size: int | None = None) -> bytes:
    """A WebP thumbnail whose longer side is at most `size` pixels."""
    size = size or settings.GALLERY_THUMBNAIL_SIZE
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, format="WEBP", quality=82, method=4)
    return out.getvalue()


def original_bytes(loaded: LoadedImage, data: bytes) -> tuple[bytes, str]:
    """What to store as the original: the bytes as received when they are a JPEG/PNG/WebP that
    needs no correction, else a re-encoded upright JPEG. Returns (bytes, file extension)."""
    if loaded.format in {"JPEG", "PNG", "WEBP"} and not _needs_rewrite(data):
        return data, {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[loaded.format]
    out = io.BytesIO()
    loaded.image.save(out, format="JPEG", quality=92)
    return out.getvalue(), "jpg"


def _needs_rewrite(data: bytes) -> bool:
    """True when the stored file would not display as the upright RGB picture we index."""
    with Image.open(io.BytesIO(data)) as img:
        orientation = img.getexif().get(0x0112, 1)
        return orientation != 1 or img.mode not in {"RGB", "L"}
