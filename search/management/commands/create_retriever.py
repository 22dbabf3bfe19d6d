from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gallery.jsonfile import read_json_argument
from search.models import Retriever


class Command(BaseCommand):
    help = (
        "Create or replace the retriever NAME from its configuration as the case study prints it "
        '({"stage_id": "feature_search", "parameters": {...}}), read from FILE (- for standard '
        "input). Feature URIs must name a collection's feature."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the retriever's name (letters, digits, - and _)")
        parser.add_argument("config", help="a JSON file, or - for standard input")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["config"]
        config = read_json_argument(source)
        retriever = Retriever.objects.filter(name=options["name"]).first() or Retriever(
            name=options["name"]
        )
        retriever.config = config
        retriever.description = options["description"] or retriever.description
        try:
            retriever.full_clean()
            retriever.save()
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Retriever {retriever.name} (id {retriever.pk}): POST /api/retrievers/"
                f"{retriever.name}/execute or /api/retrievers/{retriever.pk}/execute"
            )
        )
