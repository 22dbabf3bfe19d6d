"""What every importer shares: the record type, the per-record loop and its report.

An importer turns its input (a folder, the NGA CSV files, the AIC JSON) into a list of
`ImportRecord`s (metadata plus a function that returns the image bytes) and `RecordError`s (rows
that could not even be parsed), then hands them to `run_import`. Each record is written by
`artwork_upsert` in its own transaction, so one bad record is reported with its id and skipped
while the rest go in.
"""

from __future__ import annotations

import csv
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import DatabaseError

from gallery.images import ImageError
from gallery.services import artwork_upsert

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".gif", ".bmp"})


class ImportFileError(ValueError):
    """An input file that cannot be used at all (missing, unreadable, required columns absent).

    Raised before anything is written."""


class FetchError(OSError):
    """An image that could not be read or downloaded; the message names the place."""


@dataclass(frozen=True)
class ImportRecord:
    external_id: str
    metadata: Mapping[str, Any]
    # Returns the image bytes (read from disk or fetched); None means "keep the stored image".
    fetch_image: Callable[[], bytes] | None


@dataclass(frozen=True)
class RecordError:
    """A record the importer could not parse; reported, never written."""

    record_id: str
    reason: str


@dataclass(frozen=True)
class ImportFailure:
    record_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.record_id}: {self.reason}"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[ImportFailure] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged + self.failed

    def summary(self) -> str:
        lines = [
            f"{self.total} record(s): {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} failed."
        ]
        lines += [f"  failed {failure}" for failure in self.failures]
        return "\n".join(lines)


Progress = Callable[[int], object]


def run_import(
    *,
    source: str,
    records: Iterable[ImportRecord | RecordError],
    workers: int = 1,
    progress: Progress | None = None,
) -> ImportReport:
    """Write every record through `artwork_upsert`, one transaction each.

    Image bytes are fetched by up to `workers` threads ahead of the writer (I/O only, no database
    access in the threads); the database writes stay in this thread, in record order.
    """
    report = ImportReport()
    for record, fetched in _prefetch(records, workers=workers):
        record_id = record.record_id if isinstance(record, RecordError) else record.external_id
        try:
            if isinstance(record, RecordError):
                raise ImportFileError(record.reason)
            if isinstance(fetched, BaseException):
                raise fetched
            result = artwork_upsert(
                source=source,
                external_id=record.external_id,
                metadata=record.metadata,
                image_data=fetched,
            )
        except (ImageError, ImportFileError, FetchError, OSError, DatabaseError, ValueError) as exc:
            report.failures.append(ImportFailure(record_id, _reason(exc)))
            logger.info("import %s %s failed: %s", source, record_id, exc)
        else:
            setattr(report, result.outcome, getattr(report, result.outcome) + 1)
        if progress is not None:
            progress(1)
    return report


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DatabaseError):
        return f"database refused the record ({str(exc).strip().splitlines()[0]})"
    return str(exc) or type(exc).__name__


def _prefetch(
    records: Iterable[ImportRecord | RecordError], *, workers: int
) -> Iterator[tuple[ImportRecord | RecordError, bytes | BaseException | None]]:
    """Yield (record, image bytes | the exception the fetch raised | None), in record order,
    with at most 2 × workers fetches in flight (bounded memory and concurrency)."""

    def fetch(record: ImportRecord | RecordError) -> bytes | BaseException | None:
        if isinstance(record, RecordError) or record.fetch_image is None:
            return None
        try:
            return record.fetch_image()
        except (FetchError, OSError) as exc:
            return exc

    if workers <= 1:
        for record in records:
            yield record, fetch(record)
        return
    window: deque[tuple[ImportRecord | RecordError, Future[bytes | BaseException | None]]]
    window = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import-fetch") as pool:
        for record in records:
            window.append((record, pool.submit(fetch, record)))
            if len(window) >= 2 * workers:
                done, future = window.popleft()
                yield done, future.result()
        while window:
            done, future = window.popleft()
            yield done, future.result()


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
