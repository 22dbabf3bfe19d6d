"""Wait until every artwork with an image has a vector (or a recorded failure) under the
configured model's feature: for scripts that must not serve a half-embedded collection."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from search.features import embeddable_artworks, missing_artworks, target_feature
from search.models import EmbeddingFailure


class Command(BaseCommand):
    help = "Wait until the collection is embedded (failures count as done and are listed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")

    def handle(self, *args: Any, timeout: float, **options: Any) -> None:
        feature = target_feature()
        total = embeddable_artworks().count()
        deadline = time.monotonic() + timeout
        with tqdm(total=total, desc=f"embedding ({feature.name})", unit="artwork") as bar:
            while True:
                failed = EmbeddingFailure.objects.filter(feature=feature)
                left = missing_artworks(feature).exclude(pk__in=failed.values("artwork")).count()
                bar.update(total - left - bar.n)
                if left == 0:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(
                        f"{left} artwork(s) still not embedded after {timeout:.0f} s."
                    )
                time.sleep(1.0)
        for failure in EmbeddingFailure.objects.filter(feature=feature).select_related("artwork"):
            self.stderr.write(f"not embedded: {failure.artwork} ({failure.reason})")
        self.stdout.write(self.style.SUCCESS(f"{total} artwork(s) embedded under {feature.name}."))
