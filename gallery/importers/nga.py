"""The National Gallery of Art's open-data format: objects.csv + published_images.csv.

Column names and meanings: the NGA opendata repository's data dictionary. Each object's image is
its primary published image (viewtype "primary", the lowest sequence), fetched from the IIIF
Image API at a chosen width (`{iiifurl}/full/{width},/0/default.jpg`) or read from a local folder
holding `<uuid>.jpg` or `<objectid>.jpg`. Objects without a primary image are skipped: most
NGA objects have none, and an artwork here needs a picture.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from gallery.importers.common import ImportRecord, RecordError
from gallery.importers.fetch import fetch_url
from gallery.importers.files import image_files, read_csv, read_file_bytes

OBJECT_COLUMNS = ("objectid", "title")
IMAGE_COLUMNS = ("uuid", "iiifurl", "viewtype", "sequence", "depictstmsobjectid")
LICENSE = "CC0 1.0 (National Gallery of Art open data)"
OBJECT_URL = "https://www.nga.gov/collection/art-object-page.{objectid}.html"


@dataclass(frozen=True)
class PrimaryImage:
    uuid: str
    iiif_url: str
    sequence: float
    width: int | None
    height: int | None
    max_pixels: int | None
    assistive_text: str

    def iiif_image_url(self, width: int) -> str:
        """The IIIF URL for this image at `width` px, never wider than the source or than
        what the server's maxpixels box allows (it would only blur)."""
        cap = width
        if self.width:
            cap = min(cap, self.width)
            if self.max_pixels and self.height:
                scale = min(1.0, self.max_pixels / max(self.width, self.height))
                cap = min(cap, max(1, math.floor(self.width * scale)))
        return f"{self.iiif_url.rstrip('/')}/full/{cap},/0/default.jpg"


@dataclass(frozen=True)
class FetchOptions:
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0


def nga_records(
    *,
    objects_csv: Path,
    images_csv: Path,
    image_dir: Path | None = None,
    iiif_width: int = 843,
    limit: int | None = None,
    classification: str | None = None,
    fetch: FetchOptions | None = None,
) -> list[ImportRecord | RecordError]:
    """One record per NGA object that has a primary image (and matches `classification`,
    compared case-insensitively with `classification` and `visualbrowserclassification`)."""
    fetch = fetch or FetchOptions()
    primaries, records = primary_images(images_csv)
    local = _index_folder(image_dir) if image_dir else None
    wanted = classification.strip().lower() if classification else None
    count = 0
    for _line, row in read_csv(objects_csv, required=OBJECT_COLUMNS, id_column="objectid"):
        if limit is not None and count >= limit:
            break
        if isinstance(row, RecordError):
            records.append(row)
            count += 1
            continue
        object_id = row["objectid"].strip()
        if wanted and wanted not in {
            row.get("classification", "").strip().lower(),
            row.get("visualbrowserclassification", "").strip().lower(),
        }:
            continue
        image = primaries.get(object_id)
        if image is None:
            continue
        count += 1
        if not object_id.isdigit():
            records.append(RecordError(f"objectid {object_id!r}", "objectid is not a number"))
            continue
        if local is not None:
            path = local.get(image.uuid) or local.get(object_id)
            if path is None:
                records.append(
                    RecordError(
                        object_id,
                        f"no image file named {image.uuid}.* or {object_id}.* in {image_dir}",
                    )
                )
                continue
            fetch_image = partial(read_file_bytes, path)
        else:
            fetch_image = partial(
                fetch_url,
                image.iiif_image_url(iiif_width),
                timeout=fetch.timeout,
                retries=fetch.retries,
                backoff=fetch.backoff,
            )
        records.append(
            ImportRecord(
                external_id=object_id,
                metadata=object_metadata(row, image),
                fetch_image=fetch_image,
            )
        )
    return records


def object_metadata(row: Mapping[str, str], image: PrimaryImage) -> dict[str, Any]:
    get = lambda name: (row.get(name) or "").strip()  # noqa: E731
    return {
        "title": get("title"),
        "artist": get("attribution"),
        "display_date": get("displaydate"),
        "begin_year": get("beginyear"),
        "end_year": get("endyear"),
        "medium": get("medium"),
        "dimensions": get("dimensions"),
        "classification": get("classification"),
        "credit_line": get("creditline"),
        "alt_text": image.assistive_text,
        "source_url": OBJECT_URL.format(objectid=get("objectid")),
        "license": LICENSE,
    }


def primary_images(
    images_csv: Path,
) -> tuple[dict[str, PrimaryImage], list[ImportRecord | RecordError]]:
    """objectid -> its primary image (lowest sequence), plus the rows that could not be read."""
    primaries: dict[str, PrimaryImage] = {}
    errors: list[ImportRecord | RecordError] = []
    for _line, row in read_csv(images_csv, required=IMAGE_COLUMNS, id_column="uuid"):
        if isinstance(row, RecordError):
            errors.append(row)
            continue
        if row["viewtype"].strip().lower() != "primary":
            continue
        object_id = row["depictstmsobjectid"].strip()
        if not object_id or not row["iiifurl"].strip():
            continue
        image = PrimaryImage(
            uuid=row["uuid"].strip(),
            iiif_url=row["iiifurl"].strip(),
            sequence=_number(row["sequence"]) if row["sequence"].strip() else 0.0,
            width=_int(row.get("width")),
            height=_int(row.get("height")),
            max_pixels=_int(row.get("maxpixels")),
            assistive_text=(row.get("assistivetext") or "").strip(),
        )
        current = primaries.get(object_id)
        if current is None or image.sequence < current.sequence:
            primaries[object_id] = image
    return primaries, errors


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return math.inf


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value and value.strip() else None
    except ValueError:
        return None


def _index_folder(directory: Path) -> dict[str, Path]:
    return {path.stem: path for path in image_files(directory, recursive=False)}
