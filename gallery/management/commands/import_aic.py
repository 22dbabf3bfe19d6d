from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from gallery.importers.aic import aic_records
from gallery.importers.cli import import_with_progress

# The shared folder of 267 paintings beside the project (tests/conftest.py points at the same).
DEFAULT_DIR = Path(settings.BASE_DIR).parent / "shared" / "data" / "aic-paintings"


class Command(BaseCommand):
    help = (
        "Import Art Institute of Chicago paintings from a folder holding artworks.json and "
        "images/ (default: the shared aic-paintings folder; the bundled demo is sample/aic)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"]
        import_with_progress(
            self,
            verbosity=options["verbosity"],
            source="aic",
            build=lambda: aic_records(directory=directory),
        )
