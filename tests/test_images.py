"""Image decoding and ingest on real paintings and on generated edge cases.

Every refused image must name the problem and leave nothing behind: no Artwork row and no file
under MEDIA_ROOT.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from gallery.images import ImageError, load_image
from gallery.models import Artwork
from gallery.services import artwork_upsert
from tests.helpers import at, needs_all_paintings, one_painting, painting, raw_png

pytestmark = pytest.mark.django_db


def px(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    pixel = image.getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel


# --- generated images -----------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def split_red_blue(size: tuple[int, int] = (60, 40)) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", size, (255, 0, 0))
    image.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    return image


def media_files(media_root: Path) -> list[Path]:
    return (
        [p for p in Path(media_root).rglob("*") if p.is_file()] if Path(media_root).exists() else []
    )


def is_red(pixel: tuple[int, ...]) -> bool:
    return pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def is_blue(pixel: tuple[int, ...]) -> bool:
    return pixel[0] < 60 and pixel[1] < 60 and pixel[2] > 200


REAL = one_painting().read_bytes()

BAD_IMAGES = {
    "truncated JPEG": (REAL[: len(REAL) // 2], "damaged or incomplete"),
    "corrupt PNG data": (
        # A valid PNG whose compressed pixel data has been overwritten.
        (lambda b: b[:60] + b"\x00" * 20 + b[80:])(
            encode(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG")
        ),
        "damaged or incomplete",
    ),
    "random bytes": (bytes(range(256)) * 8, "not an image"),
    "text file": (b"title,artist\nNot a picture,Nobody\n", "not an image"),
    "empty file": (b"", "empty"),
    "decompression bomb": (
        # Claims 100,000 × 100,000 pixels in a few dozen bytes.
        raw_png(100_000, 100_000, bit_depth=8, color_type=0, rows=b"\x00" * 16),
        "10,000.0 megapixels; the limit is 64.0 megapixels",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_is_refused_and_nothing_is_written(case: str, _media_root: Path) -> None:
    data, message = BAD_IMAGES[case]
    with pytest.raises(ImageError, match=message):
        artwork_upsert(
            source="local", external_id=f"bad-{case}", metadata={"title": case}, image_data=data
        )
    assert not Artwork.objects.exists()
    assert media_files(_media_root) == []


def test_database_error_after_files_were_written_removes_them(_media_root: Path) -> None:
    """The image is fine but the row is refused (title longer than the column): the files
    already saved for it are deleted again."""
    from django.db import DataError

    with pytest.raises(DataError):
        artwork_upsert(
            source="local", external_id="long", metadata={"title": "x" * 5000}, image_data=REAL
        )
    assert not Artwork.objects.exists()
    assert media_files(_media_root) == []


@needs_all_paintings
def test_real_painting_is_stored_with_thumbnail_and_dimensions(_media_root: Path) -> None:
    real = painting("866.jpg").read_bytes()  # full size: 843 pixels wide
    result = artwork_upsert(
        source="aic", external_id="866", metadata={"title": "Helena"}, image_data=real
    )
    art = result.artwork
    original = Image.open(at(_media_root, art.image.name))
    thumb = Image.open(at(_media_root, art.thumbnail.name))
    assert (art.width, art.height) == original.size
    assert original.size[0] == 843
    assert thumb.format == "WEBP" and max(thumb.size) == 400
    # The original is kept byte for byte when it needs no correction.
    assert at(_media_root, art.image.name).read_bytes() == real
    assert sorted(p.name for p in media_files(_media_root)) == sorted(
        [at(_media_root, art.image.name).name, at(_media_root, art.thumbnail.name).name]
    )


def test_exif_rotated_jpeg_is_stored_and_thumbnailed_upright(_media_root: Path) -> None:
    # Stored landscape, red left / blue right, with orientation 6 ("rotate 90° clockwise to
    # display"): shown upright it is portrait, red on top, blue below.
    image = split_red_blue((60, 40))
    exif = image.getexif()
    exif[0x0112] = 6
    data = encode(image, "JPEG", exif=exif.tobytes(), quality=95)

    art = artwork_upsert(source="local", external_id="rot", metadata={}, image_data=data).artwork
    assert (art.width, art.height) == (40, 60)
    for name in (art.image.name, art.thumbnail.name):
        stored = Image.open(at(_media_root, name))
        assert stored.getexif().get(0x0112, 1) == 1, name  # no rotation left to apply
        w, h = stored.size
        assert h > w, name
        assert is_red(px(stored.convert("RGB"), (w // 2, h // 8))), name
        assert is_blue(px(stored.convert("RGB"), (w // 2, h - 1 - h // 8))), name


def test_cmyk_jpeg_becomes_rgb_with_the_right_colour(_media_root: Path) -> None:
    data = encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG")  # pure red in CMYK
    loaded = load_image(data)
    assert loaded.image.mode == "RGB" and is_red(px(loaded.image, (5, 5)))
    art = artwork_upsert(source="local", external_id="cmyk", metadata={}, image_data=data).artwork
    stored = Image.open(at(_media_root, art.image.name))
    assert stored.mode == "RGB" and is_red(px(stored, (5, 5)))


def test_16_bit_greyscale_png_is_scaled_not_clipped() -> None:
    grey16 = Image.new("I;16", (16, 4))
    for x in range(16):
        for y in range(4):
            grey16.putpixel((x, y), x * 4096)  # 0 .. 61440 across the width
    loaded = load_image(encode(grey16, "PNG"))
    assert loaded.image.mode == "RGB"
    values = [px(loaded.image, (x, 0))[0] for x in range(16)]
    assert values == sorted(values) and values[0] == 0 and values[-1] == 240  # not all 255


def test_16_bit_rgb_png_decodes(_media_root: Path) -> None:
    row = b"\x00" + struct.pack(">HHH", 65535, 0, 0) * 8
    data = raw_png(8, 4, bit_depth=16, color_type=2, rows=row * 4)
    art = artwork_upsert(source="local", external_id="rgb48", metadata={}, image_data=data).artwork
    assert (art.width, art.height) == (8, 4)
    assert is_red(px(Image.open(at(_media_root, art.image.name)).convert("RGB"), (1, 1)))


def test_palette_png_with_transparency_is_flattened_on_white(_media_root: Path) -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (4, 0, 8, 8))  # right half: palette entry 1 (blue); left: 0 (transparent)
    data = encode(image, "PNG", transparency=0)
    loaded = load_image(data)
    assert px(loaded.image, (1, 1)) == (255, 255, 255)
    assert px(loaded.image, (6, 1)) == (0, 0, 255)
    art = artwork_upsert(source="local", external_id="pal", metadata={}, image_data=data).artwork
    stored = Image.open(at(_media_root, art.image.name)).convert("RGB")
    assert px(stored, (1, 1))[0] > 240 and is_blue(px(stored, (6, 1)))


def test_changed_image_replaces_the_files_and_unchanged_one_is_not_decoded(
    _media_root: Path,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = encode(split_red_blue(), "PNG")
    second = encode(Image.new("RGB", (30, 30), (0, 200, 0)), "PNG")
    with django_capture_on_commit_callbacks(execute=True):
        a = artwork_upsert(source="local", external_id="c", metadata={}, image_data=first)
    old = {a.artwork.image.name, a.artwork.thumbnail.name}

    def no_decode(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged image must not be decoded again")

    monkeypatch.setattr("gallery.services.load_image", no_decode)
    assert (
        artwork_upsert(source="local", external_id="c", metadata={}, image_data=first).outcome
        == "unchanged"
    )
    monkeypatch.undo()

    with django_capture_on_commit_callbacks(execute=True):
        b = artwork_upsert(source="local", external_id="c", metadata={}, image_data=second)
    assert b.outcome == "updated" and b.image_changed
    assert (b.artwork.width, b.artwork.height) == (30, 30)
    names = {str(p.relative_to(_media_root)) for p in media_files(_media_root)}
    assert names == {b.artwork.image.name, b.artwork.thumbnail.name}
    assert not names & old  # the old files are gone after commit


def test_failed_thumbnail_write_removes_the_original_already_written(
    _media_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error while writing the thumbnail (simulated: a full disk cannot be made here)
    leaves neither the original nor a row behind."""
    from django.core.files.storage import FileSystemStorage

    real_save = FileSystemStorage.save

    def failing_save(
        self: FileSystemStorage, name: str | None, content: Any, max_length: int | None = None
    ) -> str:
        if name and name.startswith("thumbnails/"):
            raise OSError(28, "No space left on device")
        return real_save(self, name, content, max_length=max_length)

    monkeypatch.setattr(FileSystemStorage, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        artwork_upsert(source="local", external_id="disk", metadata={}, image_data=REAL)
    assert not Artwork.objects.exists()
    assert media_files(_media_root) == []


# --- large images: refused from the header, decoded at reduced scale, said in the limit's unit --


def test_just_over_the_pixel_limit_says_two_different_numbers() -> None:
    # 8001 × 8000 = 64.008 megapixels: "64.0 ...; the limit is 64.0" would read as no excess.
    header_only = raw_png(8001, 8000, bit_depth=8, color_type=0, rows=b"\x00")
    with pytest.raises(ImageError) as refused:
        load_image(header_only)
    message = str(refused.value)
    assert message == (
        "The image is 8001×8000 pixels, 64.01 megapixels; the limit is 64.00 megapixels."
    )


def test_pixel_limit_is_checked_from_the_header_before_decoding() -> None:
    # One row of the 9000 claimed: a decoder would call the file damaged. The size alone refuses it.
    claimed = raw_png(9000, 9000, bit_depth=8, color_type=2, rows=b"\x00" * 27_001)
    with pytest.raises(ImageError, match="81.0 megapixels; the limit is 64.0 megapixels"):
        load_image(claimed)


def test_byte_limit_is_said_in_mebibytes(settings: Settings) -> None:
    assert settings.GALLERY_MAX_UPLOAD_BYTES == 20 * 2**20  # the default: 20 MiB, not "21 MB"
    with pytest.raises(ImageError) as over:
        load_image(b"\xff" * (21 * 2**20))
    assert str(over.value) == "The file is 21.0 MiB; the limit is 20.0 MiB."
    with pytest.raises(ImageError) as barely:
        load_image(b"\xff" * (20 * 2**20 + 2**10))
    assert str(barely.value) == "The file is 20.001 MiB; the limit is 20.000 MiB."


def test_damaged_image_message_is_plain_words() -> None:
    with pytest.raises(ImageError) as damaged:
        load_image(REAL[: len(REAL) // 2])
    message = str(damaged.value)
    assert "damaged or incomplete" in message
    assert "(" not in message.split("(perhaps")[0] and "Truncated" not in message


def test_large_jpeg_is_decoded_at_reduced_scale_when_less_is_needed() -> None:
    photo = Image.radial_gradient("L").resize((3000, 2000)).convert("RGB")
    data = encode(photo, "JPEG", quality=80)
    full = load_image(data)
    assert full.image.size == (3000, 2000)
    reduced = load_image(data, reduce_to=224)
    width, height = reduced.image.size
    assert (width, height) == (375, 250)  # 1/8 scale: the smallest still >= 224 on both sides
    assert reduced.sha256 == full.sha256 and reduced.format == "JPEG"
    # The picture is the same, only smaller.
    again = full.image.resize((width, height), Image.Resampling.BOX)
    difference = max(
        abs(a - b)
        for a, b in zip(px(again, (187, 125)), px(reduced.image, (187, 125)), strict=True)
    )
    assert difference < 16
    # Other formats have no reduced decode: they are decoded whole.
    assert load_image(encode(photo, "PNG"), reduce_to=224).image.size == (3000, 2000)


def test_query_images_decoded_whole_have_a_lower_pixel_limit(settings: Settings) -> None:
    assert settings.GALLERY_MAX_FULL_DECODE_PIXELS == 16_000_000
    # A PNG cannot be decoded at reduced scale: at 20 megapixels a query refuses it from its
    # header, saying what would be accepted.
    header_only = raw_png(5000, 4000, bit_depth=8, color_type=2, rows=b"\x00")
    with pytest.raises(ImageError) as refused:
        load_image(header_only, reduce_to=224)
    assert str(refused.value) == (
        "The image is 5000×4000 pixels, 20.0 megapixels; a PNG image can be searched with up to "
        "16.0 megapixels (a JPEG up to 64.0 megapixels). Save it as a JPEG or make it smaller."
    )
