"""Export the query encoder's ONNX Runtime towers ahead of time (else the first query does)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from search.encoder import Encoder, EncoderLoadError


class Command(BaseCommand):
    help = (
        "Export the text and image towers of MODEL (default GALLERY_EMBEDDING_MODEL) to ONNX "
        "into GALLERY_ONNX_CACHE_DIR, and check the vectors against PyTorch's."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", nargs="?", default=None, help="HF id or checkpoint folder")

    def handle(self, *args: Any, model: str | None, **options: Any) -> None:
        import numpy as np

        from search.onnx_encoder import OnnxEncoder, create_onnx_encoder

        name = model or str(settings.GALLERY_EMBEDDING_MODEL)
        loaded: list[Encoder] = []

        def load_torch() -> Encoder:
            if not loaded:
                loaded.append(Encoder(name, device="cpu"))
            return loaded[0]

        try:
            encoder = create_onnx_encoder(name, load_torch=load_torch)
        except EncoderLoadError as exc:
            raise CommandError(str(exc)) from exc
        if not isinstance(encoder, OnnxEncoder):
            raise CommandError(f"{name} cannot be served by ONNX Runtime (see the log).")
        texts = ["a portrait of a woman", "a ship in a storm at sea", ""]
        cosine = float(
            np.min(np.sum(encoder.encode_texts(texts) * load_torch().encode_texts(texts), axis=1))
        )
        if cosine < 0.9999:
            raise CommandError(f"The ONNX text tower differs from PyTorch's (cosine {cosine:.6f}).")
        self.stdout.write(
            self.style.SUCCESS(
                f"ONNX export of {name} in {encoder.export} (min cosine to PyTorch {cosine:.6f})"
            )
        )
