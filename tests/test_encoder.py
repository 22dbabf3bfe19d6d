"""The SigLIP encoder on the offline test model (real tokenizer and image processor, random
weights): the code path is the real model's; only the weights are not semantic."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from search.encoder import (
    TEXT_MAX_LENGTH,
    Encoder,
    EncoderLoadError,
    get_encoder,
    is_offline_test_model,
    reset_encoder,
)
from tests.conftest import AIC_DIR

TEXTS = ["a portrait of a woman in a black dress", "a ship in a storm at sea", "flowers", ""]


@pytest.fixture(scope="module")
def paintings() -> list[Image.Image]:
    images = []
    for name in ["866.jpg", "874.jpg", "878.jpg", "880.jpg", "881.jpg"]:
        path = AIC_DIR / "images" / name
        if path.exists():
            images.append(Image.open(path).convert("RGB"))
    assert len(images) >= 4
    return images


@pytest.fixture
def encoder(test_encoder_settings: Path) -> Encoder:
    return get_encoder()


def test_shapes_and_unit_length(encoder: Encoder, paintings: list[Image.Image]) -> None:
    texts = encoder.encode_texts(TEXTS)
    images = encoder.encode_images(paintings)
    assert encoder.dimensions == 768
    assert texts.shape == (len(TEXTS), 768) and texts.dtype == np.float32
    assert images.shape == (len(paintings), 768) and images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    # Different inputs, different vectors (a constant output would pass the checks above).
    assert np.abs(texts[0] - texts[1]).max() > 1e-3
    assert np.abs(images[0] - images[1]).max() > 1e-3
    assert encoder.encode_texts([]).shape == (0, 768)


def test_deterministic_across_loads(test_encoder_settings: Path, paintings: list) -> None:
    first = get_encoder()
    a_text, a_img = first.encode_texts(TEXTS), first.encode_images(paintings[:2])
    reset_encoder()
    second = get_encoder()
    assert second is not first
    np.testing.assert_array_equal(a_text, second.encode_texts(TEXTS))
    np.testing.assert_array_equal(a_img, second.encode_images(paintings[:2]))


def test_texts_are_padded_to_max_length_like_siglip_training(encoder: Encoder) -> None:
    text = "a portrait of a woman"
    ids = encoder.tokenize([text])
    assert ids.shape == (1, TEXT_MAX_LENGTH) == (1, 64)
    pad = encoder.tokenizer.pad_token_id
    assert ids[0, -1].item() == pad  # short text: the tail is padding, pooled from the last slot

    ours = encoder.encode_texts([text])[0]
    unpadded = encoder.tokenizer([text], return_tensors="pt")["input_ids"]
    assert unpadded.shape[1] < TEXT_MAX_LENGTH
    padded = encoder.tokenizer([text], padding="max_length", max_length=64, return_tensors="pt")[
        "input_ids"
    ]
    with torch.inference_mode():
        v_unpadded = encoder.model.get_text_features(input_ids=unpadded).pooler_output[0]
        v_padded = encoder.model.get_text_features(input_ids=padded).pooler_output[0]
    v_unpadded = (v_unpadded / v_unpadded.norm()).numpy()
    v_padded = (v_padded / v_padded.norm()).numpy()
    np.testing.assert_allclose(ours, v_padded, atol=1e-6)
    assert np.abs(v_padded - v_unpadded).max() > 1e-2  # padding changes the vector


def test_batch_equals_one_by_one(encoder: Encoder, paintings: list[Image.Image]) -> None:
    batch = encoder.encode_images(paintings, batch_size=16)
    single = np.concatenate([encoder.encode_images([p]) for p in paintings])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    assert np.abs(batch[0] - batch[1]).max() > 1e-3
    texts_batch = encoder.encode_texts(TEXTS, batch_size=32)
    texts_single = np.concatenate([encoder.encode_texts([t]) for t in TEXTS])
    np.testing.assert_allclose(texts_batch, texts_single, atol=1e-5)
    # Batching across calls (batch_size smaller than the input) gives the same rows.
    np.testing.assert_allclose(encoder.encode_images(paintings, batch_size=2), batch, atol=1e-5)


def test_feature_name_and_flags(encoder: Encoder) -> None:
    assert encoder.feature_name.startswith("siglip-test-768-")
    assert encoder.feature_name.endswith("@v1")
    assert encoder.is_test_model and is_offline_test_model()
    assert encoder.device.type == "cpu" and encoder.dtype == torch.float32


def test_loaded_once_per_process_thread_safe(test_encoder_settings: Path) -> None:
    seen: list[Encoder] = []
    threads = [threading.Thread(target=lambda: seen.append(get_encoder())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 4 and all(e is seen[0] for e in seen)


def test_missing_model_gives_a_clear_error(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.GALLERY_EMBEDDING_FALLBACK = "0"
    missing = tmp_path / "no-such-model"
    with pytest.raises(EncoderLoadError, match="does not exist"):
        Encoder(str(missing))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EncoderLoadError, match="Cannot load the embedding model from folder"):
        Encoder(str(empty))


def test_uncached_hub_id_offline_errors_or_falls_back(
    settings, monkeypatch, test_model_dir: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """Offline (HF_HUB_OFFLINE), an id missing from the cache is an error; with the fallback on,
    the test model is used and the console says so."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(test_model_dir.parent / "empty-hf-home"))
    settings.GALLERY_EMBEDDING_MODEL = "google/siglip-base-patch16-224"
    settings.GALLERY_EMBEDDING_FALLBACK = "0"
    reset_encoder()
    try:
        with pytest.raises(EncoderLoadError, match="offline"):
            get_encoder()
        settings.GALLERY_EMBEDDING_FALLBACK = "1"
        settings.GALLERY_TEST_MODEL_DIR = str(test_model_dir)
        encoder = get_encoder()
        assert encoder.is_test_model and is_offline_test_model()
        assert "OFFLINE TEST ENCODER" in capsys.readouterr().out
    finally:
        reset_encoder()
