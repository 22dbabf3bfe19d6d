from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gallery.importers.cli import import_with_progress
from gallery.importers.folder import folder_records


class Command(BaseCommand):
    help = (
        "Import every image under DIR (recursively). Metadata from a CSV or JSON file is matched "
        "to images by id (file name without extension) or by a file/filename/image column."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--metadata", type=Path, help="a .csv or .json metadata file")
        parser.add_argument("--source", default="local", help="source label (default: local)")

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["source"]
        if not re.fullmatch(r"[a-z0-9_-]{1,32}", source):
            raise CommandError("--source must be 1–32 lowercase letters, digits, - or _.")
        import_with_progress(
            self,
            verbosity=options["verbosity"],
            source=source,
            build=lambda: folder_records(
                directory=options["directory"], metadata_file=options["metadata"]
            ),
        )
