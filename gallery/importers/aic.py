"""The Art Institute of Chicago paintings folder: artworks.json + images/<id>.jpg."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from gallery.importers.common import ImportFileError, ImportRecord, RecordError
from gallery.importers.dates import parse_years
from gallery.importers.files import read_file_bytes

LICENSE = (
    "Image and data CC0 1.0 (public domain); description CC BY 4.0, © Art Institute of Chicago"
)
CREDIT = "Art Institute of Chicago"


def aic_records(*, directory: Path) -> list[ImportRecord | RecordError]:
    path = directory / "artworks.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportFileError(f"{path} is missing") from None
    except (OSError, ValueError) as exc:
        raise ImportFileError(f"{path.name}: not readable JSON ({exc})") from exc
    if not isinstance(data, list):
        raise ImportFileError(f"{path.name}: expected a list of artworks")
    records: list[ImportRecord | RecordError] = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or item.get("id") in (None, ""):
            records.append(RecordError(f"{path.name} item {index}", "has no id"))
            continue
        external_id = str(item["id"]).strip()
        image_path = directory / str(item.get("image") or f"images/{external_id}.jpg")
        if not image_path.resolve().is_relative_to(directory.resolve()):
            records.append(
                RecordError(external_id, f"image path {item['image']!r} leaves the folder")
            )
            continue
        records.append(
            ImportRecord(
                external_id=external_id,
                metadata=aic_metadata(item),
                fetch_image=partial(read_file_bytes, image_path),
            )
        )
    return records


def aic_metadata(item: dict[str, Any]) -> dict[str, Any]:
    text = lambda name: str(item.get(name) or "").strip()  # noqa: E731
    begin, end = parse_years(text("date"))
    return {
        "title": text("title"),
        "artist": text("artist"),
        "display_date": text("date"),
        "begin_year": begin,
        "end_year": end,
        "medium": text("medium"),
        "classification": "Painting",
        "description": text("description_html"),
        "credit_line": CREDIT,
        "source_url": text("source_url"),
        "license": LICENSE,
    }
