"""Compute embeddings: queue them for the workers, or run them here with --sync."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from search.encoder import EncoderLoadError, get_encoder
from search.features import (
    activate_when_complete,
    embeddable_artworks,
    feature_for,
    missing_artworks,
)
from search.pipeline import embed_artworks
from search.queueing import queue_embedding, task_batch_size


class Command(BaseCommand):
    help = (
        "Embed artwork images under the configured model's feature. --missing (default): only "
        "artworks without a current vector; --all: recompute every vector. --sync: in this "
        "process, without a broker."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--missing", action="store_true", help="only missing vectors (default)")
        which.add_argument("--all", action="store_true", help="recompute every vector")
        parser.add_argument("--sync", action="store_true", help="run here; no broker, no worker")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="artworks per queued task (default GALLERY_EMBED_TASK_BATCH, 64); with --sync, "
            "images per model forward pass (default 16 on CPU, 64 on GPU)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        replace = bool(options["all"])
        try:
            encoder = get_encoder()
        except EncoderLoadError as exc:
            raise CommandError(str(exc)) from exc
        feature = feature_for(encoder)
        queryset = embeddable_artworks() if replace else missing_artworks(feature)
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        self.stdout.write(f"{len(ids)} artwork(s) to embed under {feature.name} ({encoder!r})")
        if encoder.is_test_model:
            self.stdout.write(self.style.WARNING("Offline test encoder: vectors are not semantic."))

        if options["sync"]:
            with tqdm(total=len(ids), unit="img", disable=not ids) as bar:
                report = embed_artworks(
                    ids=ids,
                    encoder=encoder,
                    feature=feature,
                    replace=replace,
                    batch_size=options["batch_size"],
                    on_progress=bar.update,
                )
            self.stdout.write(
                f"embedded {report.embedded}, failed {report.failed}, skipped {report.skipped}"
            )
            for artwork_id, reason in report.failures.items():
                self.stdout.write(self.style.ERROR(f"  artwork {artwork_id}: {reason}"))
        else:
            size = options["batch_size"] or task_batch_size()
            queued = 0
            for start in tqdm(range(0, len(ids), size), unit="task", disable=not ids):
                queued += queue_embedding(ids=ids[start : start + size], replace=replace)
            if ids and not queued:
                raise CommandError("The broker is unreachable; nothing was queued (try --sync).")
            self.stdout.write(f"queued {queued} task(s) on the 'embed' queue")

        feature.refresh_from_db()
        if activate_when_complete(feature=feature):
            self.stdout.write(self.style.SUCCESS(f"{feature.name} is the active feature."))
        else:
            self.stdout.write(
                f"{feature.name} is not active yet: searches use the previous feature until "
                "its vectors are complete."
            )
