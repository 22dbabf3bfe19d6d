"""Import every image under a folder, with optional metadata from a CSV or JSON file.

Metadata rows are matched to images by id (the file name without its extension, or the path
below DIR without it) or by file name (a `file`, `filename` or `image` column). An image with no
row is imported with its file name as the title.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from gallery.importers.common import ImportFileError, ImportRecord, RecordError
from gallery.importers.dates import parse_years
from gallery.importers.files import image_files, read_csv, read_file_bytes
from gallery.services import METADATA_FIELDS

FILE_KEYS = ("file", "filename", "image", "path")
# Common column names in museum exports, mapped to the Artwork field they fill.
ALIASES = {
    "date": "display_date",
    "displaydate": "display_date",
    "attribution": "artist",
    "description_html": "description",
    "creditline": "credit_line",
    "assistivetext": "alt_text",
    "url": "source_url",
    "licence": "license",
    "beginyear": "begin_year",
    "endyear": "end_year",
}


def folder_records(
    *, directory: Path, metadata_file: Path | None = None
) -> list[ImportRecord | RecordError]:
    images = image_files(directory, recursive=True)
    rows = load_metadata(metadata_file) if metadata_file else []
    by_key: dict[str, Mapping[str, Any]] = {}
    records: list[ImportRecord | RecordError] = []
    for item in rows:
        if isinstance(item, RecordError):
            records.append(item)
            continue
        for key in _row_keys(item):
            by_key.setdefault(key, item)

    used: set[int] = set()
    for path in images:
        rel = path.relative_to(directory).as_posix()
        row = next(
            (
                by_key[key]
                for key in (rel, path.name, rel.rsplit(".", 1)[0], path.stem)
                if key in by_key
            ),
            None,
        )
        if row is not None:
            used.add(id(row))
        external_id = str(row.get("id") or "").strip() if row else ""
        external_id = external_id or rel.rsplit(".", 1)[0]
        metadata = metadata_from_row(row) if row else {}
        metadata.setdefault("title", path.stem.replace("_", " "))
        records.append(
            ImportRecord(
                external_id=external_id,
                metadata=metadata,
                fetch_image=partial(read_file_bytes, path),
            )
        )
    for item in rows:
        if not isinstance(item, RecordError) and id(item) not in used:
            label = str(item.get("id") or next((item[k] for k in FILE_KEYS if item.get(k)), "?"))
            records.append(RecordError(label, f"no image under {directory.name}/ matches it"))
    return records


def metadata_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The Artwork fields a metadata row sets (unknown columns are ignored)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = ALIASES.get(key.strip().lower(), key.strip().lower())
        if name in METADATA_FIELDS and value is not None:
            out[name] = value
    if out.get("display_date") and "begin_year" not in out and "end_year" not in out:
        out["begin_year"], out["end_year"] = parse_years(str(out["display_date"]))
    return out


def load_metadata(path: Path) -> list[Mapping[str, Any] | RecordError]:
    """Rows of a metadata file: CSV with a header, or JSON (a list of objects, or an object of
    objects keyed by id)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = read_csv(path, required_any=("id", *FILE_KEYS), id_column="id", lowercase=True)
        return [row for _line, row in rows]
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ImportFileError(f"{path.name}: not readable JSON ({exc})") from exc
        if isinstance(data, dict):
            data = [{"id": key, **value} for key, value in data.items() if isinstance(value, dict)]
        if not isinstance(data, list):
            raise ImportFileError(f"{path.name}: expected a list of objects")
        out: list[Mapping[str, Any] | RecordError] = []
        for index, item in enumerate(data):
            if isinstance(item, dict):
                out.append({str(k).lower(): v for k, v in item.items()})
            else:
                out.append(RecordError(f"{path.name} item {index}", "is not an object"))
        return out
    raise ImportFileError(f"{path.name}: metadata must be a .csv or .json file")


def _row_keys(row: Mapping[str, Any]) -> list[str]:
    keys = [str(row["id"]).strip()] if row.get("id") not in (None, "") else []
    for name in FILE_KEYS:
        value = str(row.get(name) or "").strip()
        if value:
            keys += [value, value.rsplit("/", 1)[-1]]
    return keys
