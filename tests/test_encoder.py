"""The SigLIP encoder on the offline test model (real tokenizer and image processor, random
weights): the code path is the real model's; only the weights are not semantic."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from django.conf import settings
from PIL import Image
from pytest_django import Settings

from search.encoder import (
    TEXT_MAX_LENGTH,
    Encoder,
    EncoderLoadError,
    get_encoder,
    is_offline_test_model,
    reset_encoder,
)
from search.onnx_encoder import OnnxEncoder
from tests.helpers import PAINTINGS_DIR, painting_records

TEXTS = ["a portrait of a woman in a black dress", "a ship in a storm at sea", "flowers", ""]


@pytest.fixture(scope="module")
def paintings() -> list[Image.Image]:
    # The first five records: 866, 874, 878, 880 and 881 of the shared set.
    records = painting_records()[:5]
    return [Image.open(PAINTINGS_DIR / record["image"]).convert("RGB") for record in records]


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


def test_missing_model_gives_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    settings.GALLERY_EMBEDDING_FALLBACK = False
    missing = tmp_path / "no-such-model"
    with pytest.raises(EncoderLoadError, match="does not exist"):
        Encoder(str(missing))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EncoderLoadError, match="Cannot load the embedding model from folder"):
        Encoder(str(empty))


def test_uncached_hub_id_offline_errors_or_falls_back(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    test_model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Offline (HF_HUB_OFFLINE), an id missing from the cache is an error; with the fallback on,
    the test model is used and the console says so."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(test_model_dir.parent / "empty-hf-home"))
    settings.GALLERY_EMBEDDING_MODEL = "google/siglip-base-patch16-224"
    settings.GALLERY_EMBEDDING_FALLBACK = False
    reset_encoder()
    try:
        with pytest.raises(EncoderLoadError, match="offline"):
            get_encoder()
        settings.GALLERY_EMBEDDING_FALLBACK = True
        settings.GALLERY_TEST_MODEL_DIR = str(test_model_dir)
        encoder = get_encoder()
        assert encoder.is_test_model and is_offline_test_model()
        assert "OFFLINE TEST ENCODER" in capsys.readouterr().out
    finally:
        reset_encoder()


# The query encoder: ONNX Runtime by default on a CPU --------------------------------------------
def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_query_encoder_is_onnx_and_matches_pytorch_fp32(
    test_encoder_settings: Path, paintings: list[Image.Image]
) -> None:
    """The default query encoder on a CPU is ONNX Runtime, in the same feature, and its vectors
    are PyTorch fp32's (cosine >= 0.9999) for texts, the empty text and real paintings."""
    worker = get_encoder()
    query = get_encoder(for_queries=True)
    assert query.backend == "onnx" and worker.backend == "torch"
    assert query.feature_name == worker.feature_name and query.dimensions == 768
    assert not hasattr(query, "model")  # no PyTorch weights behind it
    texts = [*TEXTS, "a " + "very long text " * 40]
    assert np.all(_cosines(query.encode_texts(texts), worker.encode_texts(texts)) >= 0.9999)
    assert np.all(
        _cosines(query.encode_images(paintings), worker.encode_images(paintings)) >= 0.9999
    )
    np.testing.assert_array_equal(query.tokenize(texts), worker.tokenize(texts))
    # Batches of any size give the same rows as single inputs (the graph's batch axis is dynamic).
    single = np.concatenate([query.encode_images([p]) for p in paintings])
    np.testing.assert_allclose(query.encode_images(paintings, batch_size=3), single, atol=1e-5)
    assert query.encode_texts([]).shape == (0, 768)
    assert get_encoder(for_queries=True) is query  # loaded once per process


def test_query_encoder_setting(test_encoder_settings: Path, settings: Any) -> None:
    settings.GALLERY_QUERY_ENCODER = "torch"
    assert get_encoder(for_queries=True) is get_encoder()  # the workers' own fp32 encoder
    settings.GALLERY_QUERY_ENCODER = "tensorrt"
    with pytest.raises(EncoderLoadError, match="GALLERY_QUERY_ENCODER"):
        get_encoder(for_queries=True)
    settings.GALLERY_QUERY_ENCODER = "onnx"
    settings.GALLERY_ONNX_THREADS = 1
    query = get_encoder(for_queries=True)
    assert isinstance(query, OnnxEncoder) and query.threads == 1


def test_onnx_export_is_cached_by_the_checkpoint_files(
    test_model_dir: Path, tmp_path: Path, settings: Any
) -> None:
    """An export is reused by the next process (no PyTorch weights loaded), and a checkpoint
    whose files differ (here its config) gets an export of its own."""
    from search.onnx_encoder import create_onnx_encoder, onnx_cache_dir

    settings.GALLERY_ONNX_CACHE_DIR = str(tmp_path / "cache")
    copy = tmp_path / "model"
    shutil.copytree(test_model_dir, copy)
    first = create_onnx_encoder(str(copy), load_torch=_no_torch)
    assert isinstance(first, OnnxEncoder)
    assert first.export.parent == onnx_cache_dir()
    again = create_onnx_encoder(str(copy), load_torch=_no_torch)
    assert isinstance(again, OnnxEncoder)
    assert again.export == first.export
    assert again.export.stat().st_mtime_ns == first.export.stat().st_mtime_ns  # not re-exported
    config = json.loads((copy / "config.json").read_text())
    config["logit_scale_init_value"] = 1.0
    (copy / "config.json").write_text(json.dumps(config))
    other = create_onnx_encoder(str(copy), load_torch=_no_torch)
    assert isinstance(other, OnnxEncoder)
    assert other.export != first.export and other.export.is_dir()
    assert sorted(p.name for p in onnx_cache_dir().iterdir() if p.name.startswith("siglip")) == (
        sorted([first.export.name, other.export.name])
    )


def _no_torch() -> Encoder:
    raise AssertionError("a local checkpoint is exported without the PyTorch fallback loader")


def test_two_processes_exporting_at_once_share_one_export(
    test_model_dir: Path, tmp_path: Path
) -> None:
    """Two processes starting at once: one exports, the other waits and reuses it; no temporary
    folder is left behind and the export is complete."""
    from search.onnx_export import is_complete

    cache = tmp_path / "cache"
    script = (
        "import json, sys; from pathlib import Path; from search.onnx_export import ensure_export; "
        "folder, made = ensure_export(Path(sys.argv[1]), cache_dir=Path(sys.argv[2]), name='t'); "
        "print(json.dumps([str(folder), made]))"
    )
    command = [sys.executable, "-c", script, str(test_model_dir), str(cache)]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, cwd=settings.BASE_DIR) for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=600)[0].splitlines()[-1]) for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    folders = {folder for folder, _ in results}
    assert len(folders) == 1 and sorted(made for _, made in results) == [False, True]
    assert [p.name for p in cache.iterdir() if p.is_dir() and p.name.startswith(".")] == []
    assert is_complete(Path(folders.pop()))


def test_export_onnx_command(test_encoder_settings: Path, capsys: Any) -> None:
    from django.core.management import call_command

    call_command("export_onnx")
    out = capsys.readouterr().out
    assert "ONNX export of" in out and "min cosine to PyTorch 1.0000" in out


def test_onnx_query_path_is_numpy_and_runs_no_torch_operator(
    test_encoder_settings: Path, paintings: list[Image.Image]
) -> None:
    """Token ids are transformers' own, as numpy int64, and neither a text nor an image query
    runs a torch operator (whose OpenMP threads would compete with ONNX Runtime's for the
    cores)."""
    query = get_encoder(for_queries=True)
    assert isinstance(query, OnnxEncoder)
    ids = query.tokenize(TEXTS)
    assert isinstance(ids, np.ndarray) and ids.dtype == np.int64
    expected = query.tokenizer(
        TEXTS, padding="max_length", max_length=TEXT_MAX_LENGTH, truncation=True
    )["input_ids"]
    np.testing.assert_array_equal(ids, np.array(expected))
    pixels = query.preprocess_images(paintings[:1])
    assert isinstance(pixels, np.ndarray) and pixels.dtype == np.float32
    query.encode_texts(TEXTS[:1])  # first calls outside the profiler: lazy initialisations
    query.encode_images(paintings[:1])
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        query.encode_texts(TEXTS)
        query.encode_images(paintings[:2])
    assert [event.name for event in profile.events()] == []


def test_onnx_encoder_in_a_forked_process_says_it_runs_one_thread(
    test_encoder_settings: Path, settings: Any
) -> None:
    """A process forked after the sessions were built (gunicorn's preload) inherits no pool
    threads: it computes the same vectors and reports the one thread it really runs on."""
    settings.GALLERY_ONNX_THREADS = 2
    query = get_encoder(for_queries=True)
    assert isinstance(query, OnnxEncoder) and query.threads == 2
    expected = query.encode_texts(TEXTS)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # leave without Python's shutdown (the inherited pools cannot be torn down)
        try:
            os.close(read)
            vectors = query.encode_texts(TEXTS)
            with os.fdopen(write, "w") as out:
                out.write(json.dumps({"threads": query.threads, "vectors": vectors.tolist()}))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        child = json.loads(fh.read() or "{}")
    os.waitpid(pid, 0)
    assert child["threads"] == 1 and query.threads == 2
    np.testing.assert_allclose(np.array(child["vectors"], dtype=np.float32), expected, atol=1e-6)
