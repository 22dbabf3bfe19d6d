"""bench/quality.py as a smoke test on the offline test model: every encoder runs on real
paintings and the agreement figures come out (speed and retrieval quality are the benchmark's)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import quality


def test_quality_harness_on_the_test_model(test_encoder_settings: Path, tmp_path: Path) -> None:
    out = tmp_path / "quality.json"
    figures = quality.main(
        ["--model", str(test_encoder_settings), "--limit", "48", "--out", str(out)]
    )
    assert json.loads(out.read_text()) == figures
    assert figures["paintings"] == 48 and not figures["semantic"]
    onnx = figures["against_pytorch_fp32"]["onnx runtime fp32"]
    for kind in ("images", "texts"):
        assert onnx[kind]["min_cosine"] >= 0.9999  # exact: the same vectors
        assert onnx[kind]["top10_agreement"] == 1.0
    int8 = figures["against_pytorch_fp32"]["pytorch dynamic int8"]
    assert 0.9 < int8["images"]["mean_cosine"] <= 1.0 + 1e-6
    assert figures["int8_verdict"] in {"keep", "drop"}
    retrieval = figures["retrieval"]
    assert 0.0 <= retrieval["text_ndcg@10_mean"] <= 1.0
    assert retrieval["similar_queries"] >= 1
