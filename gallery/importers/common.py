"""What every importer shares: the record type, the per-record loop and its report.

An importer turns its input (a folder, the NGA CSV files, the AIC JSON) into a list of
`ImportRecord`s (metadata plus a function that returns the image bytes) and `RecordError`s (rows
that could not even be parsed), then hands them to `run_import`. Each record is written by
`artwork_upsert` in its own transaction, so one bad record is reported with its id and skipped
while the rest go in.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError

from gallery.images import ImageError
from gallery.models import Collection, default_collection_id
from gallery.services import artwork_upsert

logger = logging.getLogger(__name__)


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
    """A record that did not go in: one the importer could not parse (never written), or, in
    the report, one whose writing failed."""

    record_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.record_id}: {self.reason}"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failures: list[RecordError] = field(default_factory=list)

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
    collection: Collection | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> ImportReport:
    """Write every record into `collection` (default: the default collection) through
    `artwork_upsert`, one transaction each.

    Image bytes are fetched by up to `workers` threads ahead of the writer (I/O only, no database
    access in the threads); the database writes stay in this thread, in record order.
    """
    report = ImportReport()
    if collection is None:  # looked up once, not once per record
        collection = Collection.objects.get(pk=default_collection_id())
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
                collection=collection,
            )
        except (ImageError, ImportFileError, FetchError, OSError, DatabaseError, ValueError) as exc:
            report.failures.append(RecordError(record_id, _reason(exc)))
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
