"""The management commands' shared part: a tqdm progress bar and the final summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from gallery.importers.common import (
    ImportFileError,
    ImportRecord,
    ImportReport,
    RecordError,
    run_import,
)
from search.signals import embedding_batch


def import_with_progress(
    command: BaseCommand,
    *,
    source: str,
    build: Callable[[], Sequence[ImportRecord | RecordError]],
    verbosity: int = 1,
    workers: int = 1,
    description: str = "importing",
) -> ImportReport:
    try:
        records = build()
    except ImportFileError as exc:  # nothing has been written yet
        raise CommandError(f"{exc}; nothing was imported.") from exc
    bar = tqdm(
        total=len(records),
        desc=description,
        unit="artwork",
        disable=verbosity == 0,
        file=command.stderr._out,  # the bar goes to stderr, the summary to stdout
    )
    with bar, embedding_batch():
        report = run_import(source=source, records=records, workers=workers, progress=bar.update)
    style = command.style.WARNING if report.failures else command.style.SUCCESS
    command.stdout.write(style(report.summary()))
    return report
