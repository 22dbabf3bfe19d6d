"""Build the offline SigLIP test model (random weights, real tokenizer and image processor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from search.testmodel import build_test_model, ensure_test_model


class Command(BaseCommand):
    help = "Build a small SigLIP (768-dim outputs, random weights) into DIR for tests and the demo."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--force", action="store_true", help="rebuild even when current")

    def handle(self, *args: Any, directory: Path, seed: int, force: bool, **options: Any) -> None:
        build = build_test_model if force else ensure_test_model
        folder = build(directory, seed=seed)
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        self.stdout.write(
            self.style.SUCCESS(
                f"Test model in {folder} ({size / 1e6:.0f} MB); "
                f"use it with GALLERY_EMBEDDING_MODEL={folder}"
            )
        )
