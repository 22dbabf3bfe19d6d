"""Reading an importer's input files: image files in a folder, and CSV rows."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from gallery.importers.common import FetchError, ImportFileError, RecordError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp"})


def image_files(directory: Path, *, recursive: bool) -> list[Path]:
    """The image files in `directory` (and below it when `recursive`), sorted by path."""
    if not directory.is_dir():
        raise ImportFileError(f"{directory} is not a folder")
    found = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(
        path for path in found if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS
    )


def read_file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FetchError(f"cannot read {path.name} ({exc.strerror or exc})") from exc


def read_csv(
    path: Path,
    *,
    required: Sequence[str] = (),
    required_any: Sequence[str] = (),
    id_column: str | None = None,
    lowercase: bool = False,
) -> Iterator[tuple[int, dict[str, str] | RecordError]]:
    """Rows of a CSV file as dicts, with the line where each row starts.

    Missing required columns make the whole file unusable (ImportFileError, raised before the
    first row). A row with broken quoting or the wrong number of fields becomes a RecordError
    naming its line (and its id when that can be read); the rows after it still come through.
    """
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ImportFileError(f"{path.name}: cannot open ({exc.strerror or exc})") from exc
    with handle:
        # strict: a stray quote is an error we report, not a silently merged field.
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError(f"{path.name}: the file is empty") from None
        except csv.Error as exc:
            raise ImportFileError(f"{path.name}, line 1: unreadable header ({exc})") from exc
        header = [name.strip().lower() if lowercase else name.strip() for name in header]
        missing = [name for name in required if name not in header]
        if required_any and not set(required_any) & set(header):
            missing.append(" or ".join(required_any))
        if missing:
            raise ImportFileError(
                f"{path.name}: missing column(s) {', '.join(missing)}; "
                f"found {', '.join(header) or 'none'}"
            )
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, RecordError(f"{path.name} line {start}", f"broken CSV quoting ({exc})")
                continue
            if not any(cell.strip() for cell in row):
                continue
            values = dict(zip(header, row, strict=False))
            if len(row) != len(header):
                label = f"{path.name} line {start}"
                if id_column and values.get(id_column, "").strip():
                    label += f" ({id_column} {values[id_column].strip()})"
                yield (
                    start,
                    RecordError(label, f"has {len(row)} field(s), the header has {len(header)}"),
                )
                continue
            yield start, values
