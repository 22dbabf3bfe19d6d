"""Safe image decoding and the derived files made at ingest.

Every image that enters the system (an import, an admin upload, a query upload) passes through
`load_image`, which refuses non-images, truncated files, decompression bombs and animations
with an `ImageError` naming the problem, and returns an upright RGB picture.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's own bomb guard (a warning above the limit, an error above twice it) stays on for every
# code path, at our limit; load_image turns both into a clear ImageError.
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
) -> LoadedImage:
    """Decode `data` into an upright RGB image, or raise ImageError saying what is wrong."""
    max_bytes = max_bytes or settings.GALLERY_MAX_UPLOAD_BYTES
    max_pixels = max_pixels or settings.GALLERY_MAX_IMAGE_PIXELS
    if not data:
        raise ImageError("The file is empty.")
    if len(data) > max_bytes:
        raise ImageError(
            f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            width, height = probe.size
            if width * height > max_pixels:
                raise ImageError(
                    f"The image is {width}×{height} pixels; the limit is "
                    f"{max_pixels / 1e6:.0f} megapixels."
                )
            if getattr(probe, "n_frames", 1) > 1 and not allow_animated:
                raise ImageError("Animated images are not accepted; upload a single frame.")
            fmt = probe.format or "unknown"
            probe.load()  # decode fully now: truncated data fails here, not later
    except ImageError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(claimed.group(1)) / 1e6:,.0f} megapixels" if claimed else "too many pixels"
        raise ImageError(
            f"The image is {size}; the limit is {max_pixels / 1e6:.0f} megapixels."
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageError(
            "The file is not an image we can read (JPEG, PNG, WebP, TIFF, BMP or GIF)."
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"The image is damaged or truncated ({exc}).") from exc
    return LoadedImage(image=to_rgb(probe), sha256=sha256_bytes(data), format=fmt)


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
