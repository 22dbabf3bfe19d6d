"""Compute embeddings: queue them for the workers as an embedding run, or run them here with
--sync. By default under the feature searches use (the first time, GALLERY_EMBEDDING_MODEL's);
with --checkpoint under that checkpoint's feature (made when new), switched to with --activate
once complete."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from gallery.jobs.services import embedding_run_create, embedding_run_plan
from search.encoder import EncoderLoadError
from search.features import (
    FeatureCheckError,
    FeatureMismatch,
    activate_when_complete,
    default_feature_name,
    embeddable_artworks,
    encoder_for_feature,
    feature_create,
    missing_artworks,
    target_feature,
)
from search.models import Feature
from search.pipeline import embed_artworks
from search.queueing import queue_run_batches, task_batch_size


class Command(BaseCommand):
    help = (
        "Embed artwork images under the searched feature, or with --checkpoint under another "
        "checkpoint's feature. --missing (default): only artworks without a current vector; "
        "--all: recompute every vector. --sync: in this process, without a broker; otherwise "
        "an embedding run on the jobs page."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--missing", action="store_true", help="only missing vectors (default)")
        which.add_argument("--all", action="store_true", help="recompute every vector")
        parser.add_argument("--sync", action="store_true", help="run here; no broker, no worker")
        parser.add_argument(
            "--checkpoint",
            default="",
            help="a SigLIP checkpoint (Hugging Face id in the local cache, or a folder): fill "
            "its feature, made when new (default: the feature searches use)",
        )
        parser.add_argument(
            "--activate",
            action="store_true",
            help="make the feature the one searches use once it is complete",
        )
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
            feature = self._feature(options["checkpoint"].strip())
            encoder = encoder_for_feature(feature)
        except (EncoderLoadError, FeatureMismatch, FeatureCheckError) as exc:
            raise CommandError(str(exc)) from exc
        # The first feature becomes the searched one once complete: there is no other.
        activate = options["activate"] or not Feature.objects.filter(is_active=True).exists()
        queryset = embeddable_artworks() if replace else missing_artworks(feature)
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        self.stdout.write(f"{len(ids)} artwork(s) to embed under {feature.name} ({encoder!r})")
        if encoder.is_test_model:
            self.stdout.write(self.style.WARNING("Offline test encoder: vectors are not semantic."))

        if options["sync"] or not ids:
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
            self._report_activation(feature, activate=activate)
            return

        job = embedding_run_create(
            feature_id=feature.pk,
            feature_name=feature.name,
            checkpoint=feature.model_name,
            activate=activate,
            ids=ids,
            replace=replace,
            user=None,
        )
        size = options["batch_size"] or task_batch_size()
        batches = embedding_run_plan(job=job, ids=ids, batch_size=size)
        queued = queue_run_batches(job_id=job.pk, numbers=[b.number for b in batches])
        if not queued:
            raise CommandError("The broker is unreachable; nothing was queued (try --sync).")
        self.stdout.write(f"queued {queued} task(s) on the 'embed' queue: {job} on the jobs page")
        if activate:
            self.stdout.write(
                f"{feature.name} becomes the active feature once its vectors are complete."
            )

    def _feature(self, checkpoint: str) -> Feature:
        if not checkpoint:
            return target_feature()
        existing = (
            Feature.objects.filter(model_name=checkpoint).order_by("-created_at").first()
            or Feature.objects.filter(name=default_feature_name(checkpoint)).first()
        )
        return existing or feature_create(checkpoint=checkpoint)

    def _report_activation(self, feature: Feature, *, activate: bool) -> None:
        feature.refresh_from_db()
        if activate and activate_when_complete(feature=feature) or feature.is_active:
            self.stdout.write(self.style.SUCCESS(f"{feature.name} is the active feature."))
        else:
            self.stdout.write(
                f"{feature.name} is not active: searches use "
                f"{Feature.objects.filter(is_active=True).first() or 'no feature yet'}."
            )
