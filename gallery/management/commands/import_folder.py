"""Import every image under DIR (recursively). Metadata from a CSV or JSON file is matched to
images by id (file name without extension) or by a file/filename/image column."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from gallery.importers.common import ImportRecord, RecordError
from gallery.importers.folder import folder_records
from gallery.management.importing import ImportCommand


class Command(ImportCommand):
    help = __doc__

    def add_import_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--metadata", type=Path, help="a .csv or .json metadata file")
        parser.add_argument("--source", default="local", help="source label (default: local)")

    def check_options(self, options: dict[str, Any]) -> None:
        if not re.fullmatch(r"[a-z0-9_-]{1,32}", options["source"]):
            raise CommandError("--source must be 1–32 lowercase letters, digits, - or _.")

    def source_for(self, options: dict[str, Any]) -> str:
        return str(options["source"])

    def records(self, options: dict[str, Any]) -> Sequence[ImportRecord | RecordError]:
        return folder_records(directory=options["directory"], metadata_file=options["metadata"])
