"""Smoke test of the query benchmark (bench/query.py) at a tiny size.

The real thing end to end: its own database on the embedded server, the COPY loader, the HNSW
build, the retriever in process, gunicorn over HTTP, a short load test, the levers. The encoder
is the offline test model (one layer per tower) so that it stays fast; the timings mean nothing
here, so only their presence and the recall are asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PAINTINGS_DIR

ROOT = Path(__file__).resolve().parent.parent
SHARES = ("1%", "10%", "50%")
QUERY_TYPES = (
    "text",
    "image",
    "document",
    "text+document",
    "text+document+image",
    "text+filter",
    *(f"text+filter {share}" for share in SHARES),
)


def _database() -> str:
    suffix = re.sub(r"[^a-z0-9_]", "_", os.environ.get("GALLERY_TEST_DB_SUFFIX", "").lower())
    return f"test_gallery_bench_smoke{suffix}"


def _pct(figure: dict) -> None:
    assert figure["n"] > 0
    assert 0 < figure["p50"] <= figure["p95"] <= figure["p99"]


def test_query_benchmark_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    command = [
        sys.executable,
        "-m",
        "bench.query",
        "--n=2000",
        "--model=test",
        "--queries=3",
        "--recall-queries=5",
        "--int8-images=4",
        f"--paintings={PAINTINGS_DIR}",
        "--concurrency-clients=4",
        "--concurrency-seconds=3",
        f"--database={_database()}",
        "--reload",
        f"--json={out}",
    ]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Targets" in proc.stdout
    figures = json.loads(out.read_text())

    data = figures["data"]
    assert data["n"] == 2000 and data["reused"] is False
    assert data["load"]["copy_embeddings_s"] > 0
    assert data["hnsw_build_s"] > 0
    assert data["sizes"]["hnsw_index_mb"] > 0 and data["sizes"]["embedding_table_mb"] > 0

    for name in QUERY_TYPES:
        _pct(figures["inprocess"][name]["latency_ms"])
        _pct(figures["http"]["latency"][name]["latency_ms"])
    _pct(figures["cache_hit"]["latency_ms"])
    _pct(figures["http"]["cache_hit"]["latency_ms"])
    for name in ("facet_query_ms", "facet_query_250_ms", "page_first_view_ms"):
        _pct(figures["facets"][name])
    # Re-fusion: three lists (text, two references) read back from the cache and fused anew.
    _pct(figures["refusion"]["latency_ms"])
    assert figures["refusion"]["searches"] == 3 and max(figures["refusion"]["list_lengths"]) > 0
    _pct(figures["floor"]["text_tower_ms"])
    _pct(figures["floor"]["image_tower_ms"])
    _pct(figures["floor"]["text_tower_1thread_ms"])  # the throughput ceiling's per-core time

    # 2,000 vectors and ef_search >= 400: the index search is all but exact.
    prefixes = ("text", "synthetic_text_like")
    filtered = [f"{prefix}+filter {share}" for share in SHARES for prefix in prefixes]
    for name in ("text", "image", "document", "text+filter", "synthetic_text_like", *filtered):
        recall = figures["recall"][name]
        assert recall["recall@10"] >= 0.9, (name, recall)
        assert recall["recall@250"] >= 0.9, (name, recall)

    # The planner sweep: both paths at each selectivity, and the path knn() chooses: on 2,000
    # artworks every filter keeps few rows, so the share decides (the default limit, 20 %).
    sweep = figures["planner"]
    assert [row["kept_share"] for row in sweep] == sorted(row["kept_share"] for row in sweep)
    for row in sweep:
        _pct(row["exact_ms"])
        _pct(row["index_ms"])
        assert row["exact_recall@250"] >= 0.99, row
        assert row["estimated_rows"] > 0 and row["kept_rows"] > 0, row
    assert {row["chosen"] for row in sweep if row["kept_share"] < 0.15} == {"exact"}
    assert {row["chosen"] for row in sweep if row["kept_share"] > 0.3} == {"index"}

    load = figures["http"]["concurrency"]
    assert load["requests"] > 0 and load["errors"] == 0, load
    text_load = figures["http"]["concurrency_text"]
    assert text_load["requests"] > 0 and text_load["errors"] == 0, text_load
    cpu = text_load["cpu_ms_per_request"]  # where the cores went: clients and server add up
    assert cpu["machine"] > 0 and cpu["clients"] > 0
    assert cpu["server"] == pytest.approx(cpu["machine"] - cpu["clients"], abs=0.11)
    assert any(r["target"].startswith("text-only throughput") for r in figures["verdicts"])
    assert figures["http"]["memory_after_load"]["worker_rss_mb"] > 50

    levers = figures["levers"]
    assert {row["ef_search"] for row in levers["ef_search"]} >= {250, 400, 1000}
    assert levers["halfvec"]["index_mb"] > 0
    assert 0.9 <= levers["int8"]["image_mean_cosine"] <= 1.0
    assert set(levers["torch_threads"]) == {"text_tower_ms@1", "text_tower_ms@2"}
    assert {row["target"].split(" ")[0] for row in figures["verdicts"]} >= {
        "document",
        "text",
        "image",
        "text+document",
        "cache_hit",
        "recall@250",
        "facets",
        "refusion",
    }

    # The cost figures at this size, reusing the data and the index just made.
    cost_json = tmp_path / "cost.json"
    command = [
        sys.executable,
        "-m",
        "bench.query",
        "--cost-only",
        "--n=2000",
        "--queries=3",
        "--recall-queries=3",
        f"--database={_database()}",
        "--keep-index",
        f"--json={cost_json}",
    ]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "| 2,000 |" in proc.stdout
    cost = json.loads(cost_json.read_text())
    assert cost["data"]["reused"] is True and "hnsw_build_s" not in cost["data"]
    recorded = cost["data"]["recorded"]  # what loading and building cost when they were done
    assert recorded["load"]["total_s"] > 0 and recorded["hnsw_build_s"] == data["hnsw_build_s"]
    _pct(cost["cost"]["find_similar_ms"])
    for share in SHARES:
        assert cost["cost"][f"synthetic_text_like+filter {share}"]["recall@250"] >= 0.9
