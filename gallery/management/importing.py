"""What the import commands share: `--collection`, a tqdm progress bar, embeddings queued in full
batches while the import runs, and the final summary.

This is command wiring: it may use both the collection (the importers) and retrieval (queueing
the embeddings), which the importers themselves never import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from gallery.importers.common import (
    ImportFileError,
    ImportRecord,
    ImportReport,
    RecordError,
    run_import,
)
from gallery.models import DEFAULT_COLLECTION, Collection
from gallery.services import collection_named
from search.queueing import embedding_batch


class ImportCommand(BaseCommand):
    """An import command. A subclass adds its own arguments (`add_import_arguments`), refuses
    bad ones before anything is read (`check_options`), builds its records (`records`) and names
    their source (`source`, or `source_for` per run)."""

    source = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--collection",
            default=DEFAULT_COLLECTION,
            help="the collection (name or id) the artworks go into "
            f"(default: {DEFAULT_COLLECTION})",
        )
        self.add_import_arguments(parser)

    def add_import_arguments(self, parser: CommandParser) -> None:
        """The command's own arguments."""

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise CommandError for an unusable option."""

    def records(self, options: dict[str, Any]) -> Sequence[ImportRecord | RecordError]:
        raise NotImplementedError

    def source_for(self, options: dict[str, Any]) -> str:
        return self.source

    def fetch_workers(self, options: dict[str, Any]) -> int:
        """Threads fetching images ahead of the database writes (downloads only)."""
        return 1

    def handle(self, *args: Any, **options: Any) -> None:
        self.check_options(options)
        source = self.source_for(options)
        try:
            target: Collection = collection_named(options["collection"])
        except LookupError as exc:
            raise CommandError(
                f"{exc} Create it in the admin or with `manage.py create_collection`."
            ) from exc
        try:
            records = self.records(options)
        except ImportFileError as exc:  # nothing has been written yet
            raise CommandError(f"{exc}; nothing was imported.") from exc
        bar = tqdm(
            total=len(records),
            desc="importing",
            unit="artwork",
            disable=options["verbosity"] == 0,
            file=self.stderr._out,  # the bar goes to stderr, the summary to stdout
        )
        with bar, embedding_batch():
            report: ImportReport = run_import(
                source=source,
                records=records,
                collection=target,
                workers=self.fetch_workers(options),
                progress=bar.update,
            )
        style = self.style.WARNING if report.failures else self.style.SUCCESS
        self.stdout.write(style(report.summary()))
