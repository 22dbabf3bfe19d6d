"""Import the National Gallery of Art open data (objects.csv + published_images.csv): primary
images only, fetched from IIIF or read from --image-dir."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from gallery.importers.common import ImportRecord, RecordError
from gallery.importers.nga import FetchOptions, nga_records
from gallery.management.importing import ImportCommand


class Command(ImportCommand):
    help = __doc__
    source = "nga"

    def add_import_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--objects", type=Path, required=True, help="objects.csv")
        parser.add_argument("--images", type=Path, required=True, help="published_images.csv")
        where = parser.add_mutually_exclusive_group()
        where.add_argument(
            "--image-dir", type=Path, help="read <uuid>.jpg or <objectid>.jpg from this folder"
        )
        where.add_argument(
            "--iiif-width", type=int, default=843, help="IIIF download width in px (default 843)"
        )
        parser.add_argument("--limit", type=int, help="import at most N objects")
        parser.add_argument("--classification", help="e.g. painting (case-insensitive)")
        parser.add_argument("--workers", type=int, default=8, help="parallel downloads (default 8)")
        parser.add_argument("--timeout", type=float, default=30.0, help="seconds per download")
        parser.add_argument("--retries", type=int, default=3, help="retries per download")

    def check_options(self, options: dict[str, Any]) -> None:
        if options["iiif_width"] < 1 or (options["limit"] is not None and options["limit"] < 0):
            raise CommandError("--iiif-width must be positive and --limit not negative.")

    def fetch_workers(self, options: dict[str, Any]) -> int:
        return 1 if options["image_dir"] else max(1, min(options["workers"], 32))

    def records(self, options: dict[str, Any]) -> Sequence[ImportRecord | RecordError]:
        return nga_records(
            objects_csv=options["objects"],
            images_csv=options["images"],
            image_dir=options["image_dir"],
            iiif_width=options["iiif_width"],
            limit=options["limit"],
            classification=options["classification"],
            fetch=FetchOptions(timeout=options["timeout"], retries=options["retries"]),
        )
