"""The encoder's floor: each tower's forward pass alone, torch threads, and int8 quantisation.

A text query cannot be faster than the text tower's forward pass; the query path should add
little to it (target: a text query at most ~1.3x the tower). Dynamic int8 quantisation of the
Linear layers is the CPU lever: its agreement with fp32 is measured on real paintings (mean
cosine between the two vectors of one image; top-10 overlap of the neighbours each would
retrieve, among the paintings and in the benchmark collection).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from bench.stats import percentiles, timed

PHRASE = "a portrait of a woman wearing a blue dress"


def tower_floor(encoder: Any, *, image: Any, runs: int) -> dict[str, Any]:
    """p50/p95 of the text tower (64 tokens) and the image tower (one image), each alone, and of
    the encoder's full calls (tokenise / preprocess included)."""
    import torch

    ids = encoder.tokenize([PHRASE])
    pixels = encoder.preprocess_images([image])
    model = encoder.model

    def text_tower() -> None:
        with torch.inference_mode():
            model.get_text_features(input_ids=ids)

    def image_tower() -> None:
        with torch.inference_mode():
            model.get_image_features(pixel_values=pixels)

    return {
        "torch_threads": torch.get_num_threads(),
        "text_tower_ms": percentiles(timed(text_tower, runs=runs, warmup=2)),
        "text_encode_ms": percentiles(
            timed(lambda: encoder.encode_texts([PHRASE]), runs=runs, warmup=1)
        ),
        "image_tower_ms": percentiles(timed(image_tower, runs=max(3, runs // 2), warmup=1)),
        "image_encode_ms": percentiles(
            timed(lambda: encoder.encode_images([image]), runs=max(3, runs // 2), warmup=1)
        ),
    }


def thread_sweep(encoder: Any, *, runs: int, threads: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """Text tower p50 per torch.set_num_threads value (the process's setting is restored)."""
    import torch

    before = torch.get_num_threads()
    ids = encoder.tokenize([PHRASE])
    out: dict[str, Any] = {}
    try:
        for n in threads:
            torch.set_num_threads(n)

            def run() -> None:
                with torch.inference_mode():
                    encoder.model.get_text_features(input_ids=ids)

            out[f"text_tower_ms@{n}"] = percentiles(timed(run, runs=runs, warmup=1))
    finally:
        torch.set_num_threads(before)
    return out


def quantised(encoder: Any) -> Any:
    """A copy of `encoder` whose Linear layers are dynamically quantised to int8."""
    import torch

    clone = copy.copy(encoder)
    clone.model = torch.ao.quantization.quantize_dynamic(
        copy.deepcopy(encoder.model), {torch.nn.Linear}, dtype=torch.qint8
    )
    return clone


def int8_lever(
    encoder: Any,
    *,
    images: list[Path],
    phrases: list[str],
    collection: np.ndarray,
    runs: int,
) -> dict[str, Any]:
    """int8 vs fp32: tower timings, and agreement on real paintings and on phrases."""
    import torch
    from PIL import Image

    q = quantised(encoder)
    ids = encoder.tokenize([PHRASE])
    loaded = [Image.open(p).convert("RGB") for p in images]
    pixels = encoder.preprocess_images(loaded[:1])

    def text_tower() -> None:
        with torch.inference_mode():
            q.model.get_text_features(input_ids=ids)

    def image_tower() -> None:
        with torch.inference_mode():
            q.model.get_image_features(pixel_values=pixels)

    text_ms = percentiles(timed(text_tower, runs=runs, warmup=2))
    image_ms = percentiles(timed(image_tower, runs=max(3, runs // 2), warmup=1))

    fp32_img = encoder.encode_images(loaded, batch_size=8)
    int8_img = q.encode_images(loaded, batch_size=8)
    fp32_txt = encoder.encode_texts(phrases)
    int8_txt = q.encode_texts(phrases)
    return {
        "int8_text_tower_ms": text_ms,
        "int8_image_tower_ms": image_ms,
        "images": len(loaded),
        "image_mean_cosine": round(float(np.mean(np.sum(fp32_img * int8_img, axis=1))), 4),
        "image_min_cosine": round(float(np.min(np.sum(fp32_img * int8_img, axis=1))), 4),
        # Neighbours among the paintings themselves (each image's own vector left out).
        "image_top10_overlap_paintings": _overlap(fp32_img, int8_img, fp32_img, k=10, self_ex=True),
        # Neighbours in the benchmark collection (what a search would return).
        "image_top10_overlap_collection": _overlap(fp32_img, int8_img, collection, k=10),
        "text_mean_cosine": round(float(np.mean(np.sum(fp32_txt * int8_txt, axis=1))), 4),
        "text_top10_overlap_collection": _overlap(fp32_txt, int8_txt, collection, k=10),
    }


def _overlap(
    a: np.ndarray, b: np.ndarray, corpus: np.ndarray, *, k: int, self_ex: bool = False
) -> float:
    """Mean |top-k(a_i) ∩ top-k(b_i)| / k over the corpus (fp32 corpus vectors)."""
    sa, sb = a @ corpus.T, b @ corpus.T
    if self_ex:
        np.fill_diagonal(sa, -np.inf)
        np.fill_diagonal(sb, -np.inf)
    k = min(k, corpus.shape[0] - (1 if self_ex else 0))
    ta = np.argpartition(-sa, k, axis=1)[:, :k]
    tb = np.argpartition(-sb, k, axis=1)[:, :k]
    shared = [len(set(x) & set(y)) for x, y in zip(ta.tolist(), tb.tolist(), strict=True)]
    return round(float(np.mean(shared)) / k, 4)
