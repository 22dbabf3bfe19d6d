from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gallery.extractors import ExtractorConfigError
from gallery.jsonfile import read_json_argument
from gallery.models import Collection
from gallery.services import collection_create


class Command(BaseCommand):
    help = (
        "Create a collection from its configuration as the case study prints it, "
        '{"feature_extractor": {...}}, read from FILE (or - for standard input).'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the collection's name (letters, digits, - and _)")
        parser.add_argument("config", help="a JSON file, or - for standard input")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["config"]
        config = read_json_argument(source)
        if Collection.objects.filter(name=options["name"]).exists():
            raise CommandError(f"A collection named {options['name']!r} exists already.")
        try:
            collection = collection_create(
                name=options["name"], config=config, description=options["description"]
            )
        except ExtractorConfigError as exc:
            raise CommandError(f"{source}: {exc}") from exc
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Created collection {collection.name} (id {collection.pk}).")
        )
