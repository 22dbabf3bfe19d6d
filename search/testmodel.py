"""A small SigLIP built locally, for tests and for the demo when the real model is unavailable.

Random weights (fixed seed), but every part is real: a SentencePiece tokenizer trained here on a
generated text, `SiglipImageProcessor` (Pillow backend), `SiglipModel` with 768-dimensional
outputs like google/siglip-base-patch16-224. Saved with `save_pretrained`, so the encoder loads it
through exactly the code path of the real checkpoint. Its vectors are not semantic.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

# Bump when anything below changes: folders built by an older version are rebuilt.
TEST_MODEL_VERSION = 1
MARKER = "gallery-test-model.json"
TEST_MODEL_NAME = "siglip-test-768"

_WORDS = [
    "a",
    "an",
    "the",
    "of",
    "in",
    "on",
    "with",
    "and",
    "portrait",
    "landscape",
    "still",
    "life",
    "woman",
    "man",
    "girl",
    "boy",
    "child",
    "mother",
    "saint",
    "virgin",
    "madonna",
    "christ",
    "king",
    "queen",
    "lady",
    "gentleman",
    "soldier",
    "sea",
    "river",
    "lake",
    "mountain",
    "field",
    "forest",
    "tree",
    "trees",
    "garden",
    "flowers",
    "flower",
    "fruit",
    "bowl",
    "table",
    "vase",
    "dog",
    "horse",
    "cat",
    "bird",
    "cow",
    "sheep",
    "boat",
    "ship",
    "harbor",
    "city",
    "street",
    "bridge",
    "church",
    "village",
    "house",
    "night",
    "morning",
    "evening",
    "winter",
    "summer",
    "spring",
    "autumn",
    "snow",
    "rain",
    "sun",
    "moon",
    "sky",
    "clouds",
    "storm",
    "red",
    "blue",
    "green",
    "yellow",
    "white",
    "black",
    "gold",
    "silver",
    "dark",
    "light",
    "painting",
    "drawing",
    "oil",
    "canvas",
    "panel",
    "study",
    "view",
    "scene",
    "figure",
    "figures",
    "head",
    "nude",
    "bather",
    "bathers",
    "dancer",
    "dancers",
    "music",
    "reading",
    "sleeping",
    "walking",
    "wearing",
    "dress",
    "hat",
    "holding",
    "standing",
    "sitting",
    "young",
    "old",
    "head",
    "crucifixion",
    "annunciation",
    "adoration",
]


def is_test_model(folder: str | Path) -> bool:
    return (Path(folder) / MARKER).is_file()


def ensure_test_model(folder: str | Path, *, seed: int = 0) -> Path:
    """Return `folder` holding the current test model, building it first if missing or stale."""
    folder = Path(folder)
    marker = folder / MARKER
    if marker.is_file():
        info = json.loads(marker.read_text())
        if info.get("version") == TEST_MODEL_VERSION and info.get("seed") == seed:
            return folder
    return build_test_model(folder, seed=seed)


def build_test_model(folder: str | Path, *, seed: int = 0) -> Path:
    """Build the model into a temporary sibling folder and move it into place, so that two
    processes building at once never leave a half-written folder behind."""
    import sentencepiece as spm
    import torch
    from transformers import (
        SiglipConfig,
        SiglipImageProcessorPil,
        SiglipModel,
        SiglipProcessor,
        SiglipTokenizer,
    )

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    work.chmod(0o755)
    try:
        rng = random.Random(seed)
        sentences = [" ".join(rng.choices(_WORDS, k=rng.randint(2, 9))) for _ in range(3000)]
        sp_model = io.BytesIO()
        # SigLIP's own vocabulary: <pad>=0, </s>=1 (also its padding token), <unk>=2, no BOS.
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=sp_model,
            vocab_size=120,
            model_type="unigram",
            pad_id=0,
            eos_id=1,
            unk_id=2,
            bos_id=-1,
            character_coverage=1.0,
            hard_vocab_limit=False,
            num_threads=1,
            minloglevel=2,
        )
        spiece = work / "spiece.model"
        spiece.write_bytes(sp_model.getvalue())
        tokenizer = SiglipTokenizer(vocab_file=str(spiece), model_max_length=64)
        image_processor = SiglipImageProcessorPil(size={"height": 224, "width": 224})
        processor = SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer)

        # hidden_size is SigLIP's output dimension: 768 like the base model; one layer per tower.
        tower = {
            "hidden_size": 768,
            "intermediate_size": 256,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
        }
        config = SiglipConfig(
            text_config={
                **tower,
                "vocab_size": tokenizer.vocab_size,
                "max_position_embeddings": 64,
                "projection_size": 768,
                # SigLIP pads with </s> and pools the last position; no BOS.
                "pad_token_id": 1,
                "eos_token_id": 1,
                "bos_token_id": 1,
            },
            vision_config={**tower, "image_size": 224, "patch_size": 16},
        )
        torch.manual_seed(seed)
        model = SiglipModel(config).eval()
        model.save_pretrained(work)
        processor.save_pretrained(work)
        (work / MARKER).write_text(
            json.dumps({"name": TEST_MODEL_NAME, "version": TEST_MODEL_VERSION, "seed": seed})
        )
        if folder.exists():
            shutil.rmtree(folder)
        try:
            os.replace(work, folder)
        except OSError:
            if not is_test_model(folder):  # another process won the race: theirs is as good
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder
