"""Import Art Institute of Chicago paintings from a folder holding artworks.json and images/
(default: the shared aic-paintings folder; the bundled demo is sample/aic)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from gallery.importers.aic import aic_records
from gallery.importers.common import ImportRecord, RecordError
from gallery.management.importing import ImportCommand

# The shared folder of 267 paintings beside the project (tests/helpers.py points at the same).
DEFAULT_DIR = Path(settings.BASE_DIR).parent / "shared" / "data" / "aic-paintings"


class Command(ImportCommand):
    help = __doc__
    source = "aic"

    def add_import_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)

    def records(self, options: dict[str, Any]) -> Sequence[ImportRecord | RecordError]:
        return aic_records(directory=options["directory"])
