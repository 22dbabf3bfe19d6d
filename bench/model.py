"""SigLIP base (google/siglip-base-patch16-224's architecture) with random weights, for timing.

The architecture comes from `SiglipConfig()`'s defaults, which are the base model's (12 layers
per tower, width 768, MLP 3072, 12 heads, 224 px images in 16 px patches, 64 text positions,
a 32,000-token vocabulary). The tokenizer and image processor are the offline test model's
(search/testmodel.py: a real SentencePiece tokenizer and `SiglipImageProcessor`); every text is
padded to 64 tokens, so the text tower's cost does not depend on the vocabulary. Saved with
`save_pretrained` into a git-ignored folder, it loads through the encoder's own code path
(GALLERY_EMBEDDING_MODEL=<folder>). About 800 MB on disk: never commit it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

BENCH_MODEL_VERSION = 1
MARKER = "bench-model.json"


def ensure_base_model(folder: Path, *, test_model_dir: Path, seed: int = 0) -> Path:
    """`folder` holding the random-weight base model, built first if missing or stale."""
    marker = folder / MARKER
    if marker.is_file():
        info = json.loads(marker.read_text())
        if info == {"version": BENCH_MODEL_VERSION, "seed": seed}:
            return folder
    return build_base_model(folder, test_model_dir=test_model_dir, seed=seed)


def build_base_model(folder: Path, *, test_model_dir: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoProcessor, SiglipConfig, SiglipModel

    from search.testmodel import ensure_test_model

    processor = AutoProcessor.from_pretrained(ensure_test_model(test_model_dir))
    ids = {"pad_token_id": 1, "eos_token_id": 1, "bos_token_id": 1}
    config = SiglipConfig(text_config=ids)  # every other value: the base model's
    torch.manual_seed(seed)
    model = SiglipModel(config).eval()
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(work)
        processor.save_pretrained(work)
        (work / MARKER).write_text(json.dumps({"version": BENCH_MODEL_VERSION, "seed": seed}))
        if folder.exists():
            shutil.rmtree(folder)
        work.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder


def parameter_count(model_or_encoder: object) -> int:
    """Parameters of a PyTorch model, of an encoder's model, or of an ONNX encoder's graphs."""
    export = getattr(model_or_encoder, "export", None)
    if export is not None:
        import onnx

        graphs = [onnx.load(str(export / name)) for name in ("text.onnx", "image.onnx")]
        return sum(int(np.prod(t.dims)) for graph in graphs for t in graph.graph.initializer)
    model = getattr(model_or_encoder, "model", model_or_encoder)
    return sum(p.numel() for p in model.parameters())  # type: ignore[attr-defined]
