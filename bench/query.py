"""Query benchmark: latency, recall and index figures at 120,000 artworks, against the targets.

    .venv/bin/python -m bench.query                 # 120,000 artworks (a few minutes to load)
    .venv/bin/python -m bench.query --n 20000       # a quick check
    .venv/bin/python -m bench.query --json out.json

Runs on its own database on the embedded server (GALLERY_DATABASE_NAME, default gallery_bench),
never the development or test data. It migrates it, loads N artworks with synthetic embeddings
(bench/synthetic.py; reused when already loaded at the same N and seed, `--reload` forces),
rebuilds the HNSW index timing the build, then measures every query type through the retriever
in process (caches off) and over HTTP (gunicorn on 127.0.0.1), recall against exact search,
cache hits, re-fusion (the same searches re-weighted: every ranked list from the cache), the
encoder's floor, a concurrency test, and the levers (HNSW parameters, ef_search, halfvec, torch
threads, int8, concurrent kNN, persistent connections).

The encoder is SigLIP base's real architecture with random weights (bench/model.py), loaded by
the project's own encoder code from a git-ignored folder; `--model test` uses the small offline
test model instead (the smoke test), `--model PATH` any SigLIP folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/query.py` as well as `python -m bench.query`
    sys.path.insert(0, str(ROOT))

TARGETS = {  # query type -> p95 ms
    "document": 20.0,
    "text": 150.0,
    "image": 400.0,
    "text+document": 170.0,
    "text+filter 1%": 170.0,
    "text+filter 10%": 170.0,
    "text+filter 50%": 170.0,
    "cache_hit": 5.0,
}
FACETS_TARGET = 15.0  # p95 ms: the facet counts over a fused list of 500, in one query
REFUSION_TARGET = 10.0  # p95 ms: a text + two references query re-weighted (lists cached)
THROUGHPUT_SHARE = 0.8  # of cores ÷ text tower time, for distinct text queries from 20 clients
REFUSION_WEIGHTS = {"text": 1.5, "reference": 0.5}
RECALL_TARGET = 0.95
API_PATH = "/api/retrievers/default/execute"
FILTER = {"classification": "drawing", "year_from": 1700}
# Filters keeping about 1 %, 10 % and 50 % of the synthetic collection (bench/synthetic.py:
# sculptures are 5 %, photographs 10 %, years spread evenly over 1300-2000); the benchmark prints
# the share each really keeps.
FILTER_CASES = {
    "1%": {"classification": "sculpture", "year_from": 1860},
    "10%": {"classification": "photograph"},
    "50%": {"year_to": 1649},
}

_SUBJECTS = [
    "a storm at sea",
    "a portrait of a woman",
    "an old man reading",
    "a bowl of fruit",
    "a vase of flowers",
    "a winter landscape",
    "a harbor at dusk",
    "a horse in a field",
    "the virgin and child",
    "a saint in prayer",
    "a dancer on stage",
    "a village street",
    "a river with boats",
    "a girl with a dog",
    "a cathedral",
    "a mountain lake",
    "a still life with a skull",
    "soldiers on horseback",
    "bathers by a river",
    "a night sky with stars",
    "a garden in bloom",
    "a ship in a storm",
    "a king on a throne",
    "a woman at a window",
    "children playing",
    "a market square",
    "a forest path",
    "a bridge over a canal",
]
_DETAILS = [
    "",
    "in blue",
    "wearing a red hat",
    "at sunset",
    "in the rain",
    "in gold light",
    "seen from above",
    "in winter",
    "with a cat",
    "in dark tones",
    "by moonlight",
    "in spring",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=120_000, help="artworks (default 120000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reload", action="store_true", help="reload the data even if present")
    p.add_argument("--database", default=os.environ.get("GALLERY_DATABASE_NAME", "gallery_bench"))
    p.add_argument("--model", default="base", help="base (default) | test | a SigLIP folder")
    p.add_argument("--queries", type=int, default=30, help="timed queries per query type")
    p.add_argument("--recall-queries", type=int, default=30, help="queries per recall set")
    p.add_argument("--http", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--workers", type=int, default=1, help="gunicorn workers")
    p.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    p.add_argument("--torch-threads", type=int, default=0, help="GALLERY_TORCH_THREADS")
    p.add_argument("--concurrency-clients", type=int, default=20)
    p.add_argument("--concurrency-seconds", type=float, default=60.0)
    p.add_argument("--levers", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--halfvec", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--hnsw-grid",
        default="",
        help="extra m:ef_construction index builds to compare, e.g. 16:128,24:100 (slow)",
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="GALLERY_QUERY_QUANTIZE=int8: the query encoder in int8 (here and in the web)",
    )
    p.add_argument("--int8-images", type=int, default=48)
    p.add_argument("--keep-index", action="store_true", help="do not rebuild an existing index")
    p.add_argument(
        "--planner-sweep",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time both kNN paths over a range of filter selectivities",
    )
    p.add_argument(
        "--cost-only",
        action="store_true",
        help="only the cost figures at --n (load, build, sizes, find similar, text + filter)",
    )
    p.add_argument(
        "--cost-sizes",
        default="",
        help="e.g. 20000,120000,1000000: --cost-only at each size, each in database "
        "<--database>_<N> (loaded once, then reused with --keep-index), and the table",
    )
    p.add_argument(
        "--facets-only",
        action="store_true",
        help="only the facet counts at --n over find-similar lists (no encoder)",
    )
    p.add_argument(
        "--refusion-only",
        action="store_true",
        help="only re-fusion at --n: text + two references, then re-weighted",
    )
    p.add_argument("--json", type=Path, help="save the figures here")
    p.add_argument("--paintings", type=Path, default=None, help="folder of real JPEGs")
    return p.parse_args(argv)


def configure_environment(args: argparse.Namespace) -> dict[str, str]:
    """The environment of this process and of the web process: production-like (DEBUG off, so
    no per-query SQL logging), the bench database, the model, rate limits out of the way."""
    env = {
        "GALLERY_DATABASE_NAME": args.database,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or "bench-only-not-a-secret",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_HSTS_SECONDS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "GALLERY_RATE_LIMIT_PER_MINUTE": "100000000",
        "GALLERY_EMBEDDING_FALLBACK": "0",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "gallery.settings",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if args.torch_threads:
        env["GALLERY_TORCH_THREADS"] = str(args.torch_threads)
    # int8: the query encoder of this process and of the web workers (search/encoder.py).
    env["GALLERY_QUERY_QUANTIZE"] = "int8" if args.int8 else ""
    os.environ.update(env)
    return env


def model_folder(args: argparse.Namespace) -> Path:
    from bench.model import ensure_base_model
    from search.testmodel import ensure_test_model

    test_dir = ROOT / "var" / "test-model"
    if args.model == "test":
        return ensure_test_model(test_dir)
    if args.model == "base":
        return ensure_base_model(ROOT / "var" / "siglip-base-random", test_model_dir=test_dir)
    return Path(args.model).resolve()


def paintings(args: argparse.Namespace) -> list[Path]:
    folder = args.paintings or Path(
        os.environ.get("GALLERY_SAMPLE_PAINTINGS", ROOT.parent / "shared/data/aic-paintings")
    )
    files = sorted((folder / "images").glob("*.jpg")) or sorted(folder.glob("*.jpg"))
    if not files:
        raise SystemExit(f"no JPEGs in {folder} (set --paintings)")
    return files


def phrases(count: int, seed: int) -> list[str]:
    combos = [f"{s} {d}".strip() for d in _DETAILS for s in _SUBJECTS]
    random.Random(seed).shuffle(combos)
    return [combos[i % len(combos)] + ("" if i < len(combos) else f" {i}") for i in range(count)]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)  # noqa: T201


# Data ------------------------------------------------------------------------------------------
def prepare_data(args: argparse.Namespace, *, feature_name: str, model: Path) -> dict[str, Any]:
    from django.db import connection

    from bench import synthetic

    spec = synthetic.Spec(n=args.n, seed=args.seed)
    out: dict[str, Any] = {"n": args.n, "seed": args.seed}
    with connection.cursor() as cur:
        present = synthetic.loaded_key(cur)
    if present == spec.key() and not args.reload:
        log(f"data already loaded ({spec.key()}): reusing it")
        out["reused"] = True
    else:
        log(f"loading {args.n} artworks + embeddings with COPY")
        out["reused"] = False
        out["load"] = synthetic.load(
            connection, spec=spec, feature_name=feature_name, model_name=str(model)
        )
        log(f"loaded: {out['load']}")
    with connection.cursor() as cur:  # the loaded feature is the encoder's (any model)
        cur.execute(
            "UPDATE search_feature SET name = %s, model_name = %s "
            "WHERE is_active AND (name <> %s OR model_name <> %s)",
            [feature_name, str(model), feature_name, str(model)],
        )
        cur.execute("SELECT id FROM search_feature WHERE is_active")
        out["feature_id"] = cur.fetchone()[0]
        cur.execute("SELECT to_regclass('embedding_vector_hnsw') IS NOT NULL")
        has_index = cur.fetchone()[0]
    if has_index and args.keep_index:
        log("keeping the existing HNSW index (--keep-index)")
    else:
        log("building the HNSW index (m 16, ef_construction 64, a process per core)")
        # The graph must fit in maintenance_work_mem or the build slows many times over: about
        # 2 KB per halfvec(768) vector at m 16, so 1,000,000 vectors need more than 2 GB.
        memory = f"{max(2, -(-args.n * 3 // 1_000_000))}GB"
        seconds = synthetic.build_hnsw(
            connection, m=16, ef_construction=64, maintenance_work_mem=memory
        )
        out["hnsw_build_s"] = round(seconds, 2)
        synthetic.record(connection, hnsw_build_s=out["hnsw_build_s"])
        log(f"HNSW built in {out['hnsw_build_s']} s")
    # What the data and the index cost when they were made (this run or an earlier one).
    out["recorded"] = synthetic.recorded(connection)
    out["sizes"] = {k: round(v, 1) for k, v in synthetic.sizes(connection).items()}
    with connection.cursor() as cur:  # what the server may keep in memory decides much here
        cur.execute("SHOW shared_buffers")
        out["shared_buffers"] = cur.fetchone()[0]
    return out


# Query sets --------------------------------------------------------------------------------------
def query_cases(
    *, texts: list[str], images: list[bytes], docs: list[int], count: int
) -> dict[str, list[dict[str, Any]]]:
    """Per query type, `count` inputs (dicts of RetrievalInputs fields + filters)."""
    cases: dict[str, list[dict[str, Any]]] = {k: [] for k in _CASE_NAMES}
    for i in range(count):
        text, image, doc = texts[i], images[i % len(images)], docs[i]
        cases["text"].append({"text": text})
        cases["image"].append({"image": image})
        cases["document"].append({"document_id": doc})
        cases["text+document"].append({"text": texts[3 * count + i], "document_id": doc})
        cases["text+document+image"].append(
            {"text": texts[count + i], "document_id": docs[-1 - i], "image": image}
        )
        cases["text+filter"].append({"text": texts[2 * count + i], "filters": FILTER})
        for j, (share, filters) in enumerate(FILTER_CASES.items()):
            text = texts[(4 + j) * count + i]
            cases[f"text+filter {share}"].append({"text": text, "filters": filters})
    return cases


_CASE_NAMES = (
    "text",
    "image",
    "document",
    "text+document",
    "text+document+image",
    "text+filter",
    *(f"text+filter {share}" for share in FILTER_CASES),
)


def run_inprocess(query: dict[str, Any], *, use_cache: bool) -> Any:
    from search.filters import Filters
    from search.retriever import RetrievalInputs, execute_retriever

    inputs = RetrievalInputs(
        text=query.get("text", ""),
        image=query.get("image"),
        document_id=query.get("document_id"),
    )
    filters = Filters(**query["filters"]) if query.get("filters") else None
    return execute_retriever(inputs=inputs, filters=filters, use_cache=use_cache, limit=24)


def inprocess_latency(cases: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each query once, caches cleared before it (result cache and text-vector cache)."""
    from django.core.cache import cache

    from bench.stats import percentiles

    out: dict[str, Any] = {}
    for name, queries in cases.items():
        run_inprocess(queries[0], use_cache=False)  # warm-up (model, connection, plans)
        ms, encode, knn = [], [], []
        for query in queries:
            cache.clear()
            started = time.perf_counter()
            result = run_inprocess(query, use_cache=False)
            ms.append((time.perf_counter() - started) * 1000)
            encode.append(sum(s.encode_ms for s in result.stages[0].searches))
            knn.append(sum(s.knn_ms for s in result.stages[0].searches))
        out[name] = {
            "latency_ms": percentiles(ms),
            "encode_ms_p50": round(float(np.median(encode)), 2),
            "knn_ms_p50": round(float(np.median(knn)), 2),
        }
        log(f"in-process {name}: {out[name]['latency_ms']}")
    return out


def inprocess_cache_hits(queries: list[dict[str, Any]]) -> dict[str, Any]:
    from bench.stats import percentiles

    ms = []
    for query in queries:
        run_inprocess(query, use_cache=True)
        started = time.perf_counter()
        result = run_inprocess(query, use_cache=True)
        ms.append((time.perf_counter() - started) * 1000)
        assert result.cache_hit, "the second identical query was not a cache hit"
    return {"latency_ms": percentiles(ms)}


def facets_section(docs: list[int]) -> dict[str, Any]:
    """The facets of fused lists (search/facets.py). A find-similar search alone lists 250 (its
    top_k); the default retriever's final list is up to 500 long, so the query is also timed on
    500 ids (two such lists joined). And what a page or an API answer adds after its own page
    of results (the fused list then cached): its ids read back through the retriever a page at
    a time, then the query; first view, and a repeated one."""
    from django.core.cache import cache

    from bench.stats import percentiles
    from search.facets import facet_counts, fused_artwork_ids
    from search.retriever import RetrievalInputs, execute_retriever

    times: dict[str, list[float]] = {"query_500": [], "query_250": [], "first": [], "again": []}
    lengths: set[int] = set()
    for doc, other in zip(docs, docs[1:] + docs[:1], strict=True):
        cache.clear()
        inputs = RetrievalInputs(document_id=doc)
        execute_retriever(inputs=inputs, limit=24)  # the page's own request
        for name in ("first", "again"):
            started = time.perf_counter()
            ids = fused_artwork_ids(inputs=inputs)
            facet_counts(artwork_ids=ids)
            times[name].append((time.perf_counter() - started) * 1000)
        more = fused_artwork_ids(inputs=RetrievalInputs(document_id=other))
        joined = list(dict.fromkeys(ids + more))[:500]
        for name, listed in (("query_250", ids), ("query_500", joined)):
            started = time.perf_counter()
            lengths.add(facet_counts(artwork_ids=listed).counted)
            times[name].append((time.perf_counter() - started) * 1000)
    return {
        "facet_query_ms": percentiles(times["query_500"]),
        "facet_query_250_ms": percentiles(times["query_250"]),
        "page_first_view_ms": percentiles(times["first"]),
        "page_repeat_view_ms": percentiles(times["again"]),
        "list_lengths": sorted(lengths),
    }


def refusion_section(texts: list[str], docs: list[int]) -> dict[str, Any]:
    """Re-weighting a query: text + two references run once (their three ranked lists cached),
    then the same inputs with other weights, timed in process. The fused list and the page are
    new (another key), so the time is the cached lists read back, fused and a page hydrated;
    nothing is encoded or searched."""
    from django.core.cache import cache

    from bench.stats import percentiles
    from search.retriever import RetrievalInputs, execute_retriever

    ms: list[float] = []
    cpu: list[float] = []  # this process's CPU time: what a busy machine cannot inflate
    lists: set[int] = set()
    for text, first, second in zip(texts, docs, docs[1:] + docs[:1], strict=True):
        cache.clear()
        inputs = RetrievalInputs(text=text, references=(first, second))
        execute_retriever(inputs=inputs, limit=24)
        started, started_cpu = time.perf_counter(), time.process_time()
        result = execute_retriever(inputs=inputs, limit=24, weights=REFUSION_WEIGHTS)
        ms.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        searches = result.stages[0].searches
        assert not result.cache_hit and all(s.list_cached for s in searches), searches
        lists.update(s.returned for s in searches)
    return {
        "latency_ms": percentiles(ms),
        "process_cpu_ms": percentiles(cpu),
        "searches": 3,
        "list_lengths": sorted(lists),
    }


def refusion_only(args: argparse.Namespace) -> dict[str, Any]:
    """--refusion-only: the data (loaded or reused), the index, and refusion_section()."""
    from django.conf import settings
    from django.core.management import call_command

    from bench.stats import loadavg
    from search.encoder import get_encoder, reset_encoder

    figures: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_start": loadavg()}}
    call_command("migrate", verbosity=0)
    folder = model_folder(args)
    settings.GALLERY_EMBEDDING_MODEL = str(folder)
    reset_encoder()
    encoder = get_encoder(for_queries=True)
    figures["data"] = prepare_data(args, feature_name=encoder.feature_name, model=folder)
    docs = random.Random(args.seed + 7).sample(range(1, args.n + 1), args.queries)
    figures["refusion"] = refusion_section(phrases(args.queries, args.seed), docs)
    print_refusion(figures["refusion"])
    return _section_done(args, figures)


def print_refusion(refusion: dict[str, Any]) -> None:
    r, c = refusion["latency_ms"], refusion["process_cpu_ms"]
    print(  # noqa: T201 - the report is the output
        "\nRe-fusion: text + two references re-weighted, lists cached (p50 / p95 / p99 ms; "
        f"target p95 <= {REFUSION_TARGET:g}):\n  {'re-weighted execute':<26} "
        f"{r['p50']:>7} {r['p95']:>7} {r['p99']:>7}\n  {'its CPU time in process':<26} "
        f"{c['p50']:>7} {c['p95']:>7} {c['p99']:>7}"
    )


def facets_only(args: argparse.Namespace) -> dict[str, Any]:
    """--facets-only: the data (loaded or reused), the index, and facets_section()."""
    from django.core.management import call_command

    from bench.stats import loadavg

    figures: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_start": loadavg()}}
    call_command("migrate", verbosity=0)
    figures["data"] = prepare_data(
        args, feature_name="bench-synthetic", model=ROOT / "var" / "synthetic"
    )
    docs = random.Random(args.seed + 7).sample(range(1, args.n + 1), args.queries)
    figures["facets"] = facets_section(docs)
    print_facets(figures["facets"])
    return _section_done(args, figures)


def _section_done(args: argparse.Namespace, figures: dict[str, Any]) -> dict[str, Any]:
    """The end of a one-section run: the load it ended at, printed and saved with --json."""
    from bench.stats import loadavg

    figures["machine"]["load_end"] = loadavg()
    print(  # noqa: T201 - the report is the output
        f"  {args.n} artworks, {figures['machine']['cpus']} CPUs, load "
        f"{figures['machine']['load_start']} -> {figures['machine']['load_end']}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=_json_default))
    return figures


def print_facets(facets: dict[str, Any]) -> None:
    rows = {
        "the facet query, 500 ids": facets["facet_query_ms"],
        "the facet query, 250 ids": facets["facet_query_250_ms"],
        "a page adds, first view": facets["page_first_view_ms"],
        "a page adds, repeat view": facets["page_repeat_view_ms"],
    }
    print(  # noqa: T201 - the report is the output
        f"\nFacets of fused lists (p50 / p95 / p99 ms; target p95 <= {FACETS_TARGET:g}):\n"
        + "\n".join(
            f"  {name:<26} {r['p50']:>7} {r['p95']:>7} {r['p99']:>7}" for name, r in rows.items()
        )
    )


# Recall ---------------------------------------------------------------------------------------
def recall_sets(
    *,
    matrix: np.ndarray,
    meta: dict[str, np.ndarray],
    spec: Any,
    text_vectors: np.ndarray,
    image_vectors: np.ndarray,
    docs: list[int],
) -> dict[str, list[dict[str, Any]]]:
    from bench import synthetic
    from bench.recall import filter_mask
    from search.filters import Filters

    filters = Filters(**FILTER)  # type: ignore[arg-type]
    mask = filter_mask(meta, filters)
    count = len(docs)
    return {
        "text": [{"vector": v} for v in text_vectors],
        "image": [{"vector": v} for v in image_vectors],
        "document": [{"vector": matrix[d - 1], "exclude_id": d} for d in docs],
        "text+filter": [{"vector": v, "filters": filters, "mask": mask} for v in text_vectors],
        **selectivity_sets(
            meta=meta,
            vectors={
                "text": text_vectors,
                "synthetic_text_like": synthetic.fresh_queries(spec, count, gap=0.6),
            },
        ),
        # The random-weight model's vectors are not shaped like a real model's queries; these
        # are: new points from the collection's distribution (a photo of an artwork) and the
        # same shifted by a "modality gap" (a real text query sits apart from the images).
        "synthetic_image_like": [{"vector": v} for v in synthetic.fresh_queries(spec, count)],
        "synthetic_text_like": [
            {"vector": v} for v in synthetic.fresh_queries(spec, count, gap=0.6)
        ],
        "synthetic_text_like+filter": [
            {"vector": v, "filters": filters, "mask": mask}
            for v in synthetic.fresh_queries(spec, count, gap=0.6)
        ],
    }


def selectivity_sets(
    *, meta: dict[str, np.ndarray], vectors: dict[str, np.ndarray]
) -> dict[str, list[dict[str, Any]]]:
    """'<prefix>+filter <share>': each query set under each of FILTER_CASES."""
    from bench.recall import filter_mask
    from search.filters import Filters

    out: dict[str, list[dict[str, Any]]] = {}
    for share, fields in FILTER_CASES.items():
        filters = Filters(**fields)  # type: ignore[arg-type]
        mask = filter_mask(meta, filters)
        for prefix, queries in vectors.items():
            out[f"{prefix}+filter {share}"] = [
                {"vector": v, "filters": filters, "mask": mask} for v in queries
            ]
    return out


def recall_mode(set_name: str) -> str:
    """The input mode whose ef_search floor the retriever uses for a recall set's queries."""
    if set_name.startswith(("text", "synthetic_text")):
        return "text"
    return "document" if set_name == "document" else "content"


# Planning filtered searches ---------------------------------------------------------------------
# year_to cut-offs: begin years spread evenly over 1300-1999, so year_to Y keeps (Y - 1299) / 700
# of the collection: about 0.6, 1, 2, 5, 10, 20 and 50 %.
SWEEP_YEAR_TO = (1303, 1306, 1313, 1334, 1369, 1439, 1649)


def planner_sweep(
    *, matrix: np.ndarray, meta: dict[str, np.ndarray], spec: Any, feature_id: int, count: int
) -> list[dict[str, Any]]:
    """Both paths forced at a range of selectivities (text-like queries, the text ef_search):
    the rows kept and the planner's estimate, what knn() would choose, each path's latency
    and recall@250. The crossover is where SEARCH_EXACT_SCAN_MAX_ROWS belongs."""
    from bench import synthetic
    from bench.recall import exact_ids, filter_mask, recall
    from bench.stats import percentiles
    from search.config import ef_search_for
    from search.filters import Filters, filter_sql
    from search.knn import estimate_rows, knn, plan_knn

    queries = synthetic.fresh_queries(spec, count, gap=0.6)
    rows = []
    for year_to in SWEEP_YEAR_TO:
        filters = Filters(year_to=year_to)
        mask = filter_mask(meta, filters)
        where, params = filter_sql(filters)
        row: dict[str, Any] = {
            "filter": f"year_to {year_to}",
            "kept_rows": int(mask.sum()),
            "kept_share": round(float(mask.mean()), 4),
            "estimated_rows": estimate_rows(where=where, params=params)[0],
            "chosen": plan_knn(filters=filters).path,
        }
        for path in ("exact", "index"):
            ms, r250 = [], []
            for v in queries:
                started = time.perf_counter()
                found = knn(
                    feature_id=feature_id,
                    vector=v,
                    top_k=250,
                    filters=filters,
                    ef_search=ef_search_for("text"),
                    path=path,  # type: ignore[arg-type]
                )
                ms.append((time.perf_counter() - started) * 1000)
                truth = exact_ids(matrix, v, 250, mask=mask)
                r250.append(recall([i for i, _ in found], truth, 250))
            row[f"{path}_ms"] = percentiles(ms)
            row[f"{path}_recall@250"] = round(float(np.mean(r250)), 4)
        rows.append(row)
        log(f"planner sweep: {row}")
    return rows


# Levers ---------------------------------------------------------------------------------------
def ef_search_sweep(
    *, matrix: np.ndarray, sets: dict[str, list[dict[str, Any]]], feature_id: int
) -> list[dict[str, Any]]:
    from bench.recall import measure_recall

    rows = []
    sweep = (("off", (250, 400, 600, 800, 1000)), ("relaxed_order", (100, 250, 400, 800, 1000)))
    for mode, values in sweep:
        for ef in values:
            for name in ("document", "synthetic_text_like", "text", "image"):
                r = measure_recall(
                    matrix=matrix,
                    queries=sets[name],
                    feature_id=feature_id,
                    ef_search=ef,
                    iterative=mode,
                )
                rows.append({"iterative": mode, "ef_search": ef, "set": name, **_brief(r)})
                log(f"ef_search {ef} {mode} {name}: {_brief(r)}")
    return rows


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "recall@10": r["recall@10"],
        "recall@250": r["recall@250"],
        "knn_p50_ms": r["knn_ms"]["p50"],
        "knn_p95_ms": r["knn_ms"]["p95"],
        "short": r["short_results"],
    }


def halfvec_lever(
    *, matrix: np.ndarray, sets: dict[str, list[dict[str, Any]]], feature_id: int
) -> dict[str, Any]:
    """The storage lever, turned around now that the column is halfvec(768): an HNSW index over
    vector::vector(768) (float32, the old storage's index) beside the model's (then dropped)."""
    from django.db import connection

    from bench import synthetic
    from bench.recall import measure_recall

    name = "bench_embedding_halfvec_hnsw"  # the name synthetic.load() drops
    seconds = synthetic.build_hnsw(connection, name=name, halfvec=False)
    with connection.cursor() as cur:
        cur.execute(f"SELECT pg_relation_size('{name}')")
        size = cur.fetchone()[0] / 1024 / 1024
    out: dict[str, Any] = {"build_s": round(seconds, 2), "index_mb": round(size, 1)}
    for ef in (400, 600):
        for set_name in ("document", "synthetic_text_like"):
            r = measure_recall(
                matrix=matrix,
                queries=sets[set_name],
                feature_id=feature_id,
                ef_search=ef,
                iterative="relaxed_order",
                halfvec=False,
            )
            out[f"float32 ef{ef}:{set_name}"] = _brief(r)
    with connection.cursor() as cur:
        cur.execute(f"DROP INDEX IF EXISTS {name}")
    log(f"float32 index: {out}")
    return out


def hnsw_grid(
    grid: str, *, matrix: np.ndarray, sets: dict[str, list[dict[str, Any]]], feature_id: int
) -> list[dict[str, Any]]:
    """Rebuild the index with other m / ef_construction, measure, and restore the model's."""
    from django.db import connection

    from bench import synthetic
    from bench.recall import measure_recall

    rows = []
    for item in filter(None, grid.split(",")):
        m, efc = (int(x) for x in item.split(":"))
        seconds = synthetic.build_hnsw(connection, m=m, ef_construction=efc)
        size = synthetic.sizes(connection)["hnsw_index_mb"]
        row: dict[str, Any] = {"m": m, "ef_construction": efc, "build_s": round(seconds, 1)}
        row["index_mb"] = round(size, 1)
        for ef in (250, 400):
            for name in ("document", "synthetic_text_like"):
                r = measure_recall(
                    matrix=matrix,
                    queries=sets[name],
                    feature_id=feature_id,
                    ef_search=ef,
                    iterative="relaxed_order",
                )
                row[f"ef{ef}:{name}"] = _brief(r)
        rows.append(row)
        log(f"hnsw grid: {row}")
    if rows:
        seconds = synthetic.build_hnsw(connection, m=16, ef_construction=64)
        log(f"restored the model's index (m 16, ef_construction 64) in {seconds:.1f} s")
    return rows


def concurrent_knn_lever(
    *, encoder: Any, texts: list[str], docs: list[int], matrix: np.ndarray, feature_id: int
) -> dict[str, Any]:
    """text + document: encode, then both kNNs (the retriever today) against the document's
    kNN running on another thread (its own DB connection) while the text is encoded."""
    from django.db import connection

    from bench.recall import retriever_knn
    from bench.stats import percentiles

    def doc_knn(doc: int) -> list[int]:
        ids, _ = retriever_knn(
            feature_id=feature_id, vector=matrix[doc - 1], top_k=250, exclude_id=doc
        )
        connection.close_if_unusable_or_obsolete()
        return ids

    sequential, overlapped = [], []
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(doc_knn, docs[0]).result()  # open the thread's connection
        for text, doc in zip(texts, docs, strict=False):
            started = time.perf_counter()
            v = encoder.encode_texts([text])[0]
            retriever_knn(feature_id=feature_id, vector=v, top_k=250)
            doc_knn(doc)
            sequential.append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            future = pool.submit(doc_knn, doc)
            v = encoder.encode_texts([text])[0]
            retriever_knn(feature_id=feature_id, vector=v, top_k=250)
            future.result()
            overlapped.append((time.perf_counter() - started) * 1000)
    return {
        "sequential_ms": percentiles(sequential),
        "document_knn_on_a_thread_ms": percentiles(overlapped),
    }


def persistent_connection_lever(docs: list[int]) -> dict[str, Any]:
    """Find-similar in process with the connection kept (CONN_MAX_AGE > 0) against a new
    connection per query (CONN_MAX_AGE = 0: Django closes it after every request)."""
    from django.core.cache import cache
    from django.db import connection

    from bench.stats import percentiles

    kept, fresh = [], []
    for doc in docs:
        cache.clear()
        started = time.perf_counter()
        run_inprocess({"document_id": doc}, use_cache=False)
        kept.append((time.perf_counter() - started) * 1000)
        connection.close()
        cache.clear()
        started = time.perf_counter()
        run_inprocess({"document_id": doc}, use_cache=False)
        fresh.append((time.perf_counter() - started) * 1000)
    return {"kept_ms": percentiles(kept), "new_connection_ms": percentiles(fresh)}


# Cost against N --------------------------------------------------------------------------------
COST_QUERY_SETS = (
    "document",
    "synthetic_text_like",
    *(f"synthetic_text_like+filter {s}" for s in FILTER_CASES),
)


def cost_section(args: argparse.Namespace, *, feature_id: int) -> dict[str, Any]:
    """What grows with N, without the encoder (its cost does not depend on N): find similar
    end to end in process, and the retriever's kNN (planner included) for text-like queries
    with each filter of FILTER_CASES, with recall@250 against exact search."""
    from bench import synthetic
    from bench.recall import measure_recall
    from bench.stats import percentiles

    spec = synthetic.Spec(n=args.n, seed=args.seed)
    matrix = synthetic.vectors(spec)
    meta = synthetic.metadata(spec)
    count = max(args.queries, args.recall_queries)
    docs = random.Random(args.seed + 7).sample(range(1, args.n + 1), count)
    sets = {
        "document": [{"vector": matrix[d - 1], "exclude_id": d} for d in docs],
        "synthetic_text_like": [
            {"vector": v} for v in synthetic.fresh_queries(spec, count, gap=0.6)
        ],
        **selectivity_sets(
            meta=meta,
            vectors={"synthetic_text_like": synthetic.fresh_queries(spec, count, gap=0.6)},
        ),
    }
    out: dict[str, Any] = {"queries": count}
    for name in COST_QUERY_SETS:
        out[name] = measure_recall(
            matrix=matrix, queries=sets[name], feature_id=feature_id, input_mode=recall_mode(name)
        )
        log(f"cost {name}: {out[name]}")
    run_inprocess({"document_id": docs[0]}, use_cache=False)  # warm-up
    ms = []
    for doc in docs:
        started = time.perf_counter()
        run_inprocess({"document_id": doc}, use_cache=False)
        ms.append((time.perf_counter() - started) * 1000)
    out["find_similar_ms"] = percentiles(ms)
    log(f"cost find similar in process: {out['find_similar_ms']}")
    return out


def cost_table(args: argparse.Namespace) -> list[dict[str, Any]]:
    """--cost-only at each of --cost-sizes, each in its own process and database."""
    rows = []
    for n in (int(x) for x in args.cost_sizes.split(",") if x.strip()):
        out = ROOT / "var" / "bench" / f"cost-{n}.json"
        command = [
            sys.executable,
            "-m",
            "bench.query",
            "--cost-only",
            f"--n={n}",
            f"--seed={args.seed}",
            f"--database={args.database}_{n}",
            f"--queries={args.queries}",
            f"--recall-queries={args.recall_queries}",
            f"--json={out}",
            *(["--keep-index"] if args.keep_index else []),
            *(["--reload"] if args.reload else []),
        ]
        log(f"cost at N = {n}: {' '.join(command[1:])}")
        subprocess.run(command, cwd=ROOT, check=True)
        rows.append(cost_row(json.loads(out.read_text())))
    print_cost_table(rows)
    return rows


def cost_row(figures: dict[str, Any]) -> dict[str, Any]:
    d, c = figures["data"], figures["cost"]
    recorded = d.get("recorded", {})
    row: dict[str, Any] = {
        "n": d["n"],
        "load_s": recorded.get("load", {}).get("total_s"),
        "hnsw_build_s": d.get("hnsw_build_s", recorded.get("hnsw_build_s")),
        "table_mb": d["sizes"]["embedding_table_mb"],
        "index_mb": d["sizes"]["hnsw_index_mb"],
        "find_similar_p95_ms": c["find_similar_ms"]["p95"],
        "find_similar_recall@250": c["document"]["recall@250"],
        "load_avg": f"{figures['machine']['load_start']} -> {figures['machine']['load_end']}",
        "shared_buffers": d.get("shared_buffers"),
    }
    for share in FILTER_CASES:
        r = c[f"synthetic_text_like+filter {share}"]
        row[f"text+filter {share} knn p95_ms"] = r["knn_ms"]["p95"]
        row[f"text+filter {share} recall@250"] = r["recall@250"]
    return row


def print_cost_table(rows: list[dict[str, Any]]) -> None:
    p = print  # noqa: T202 - the report is the output
    shares = list(FILTER_CASES)
    head = (
        "| N | load s | HNSW build s | table MB | index MB | find similar p95 ms (recall@250) | "
        + " | ".join(f"text-like + filter {s}: kNN p95 ms (recall@250)" for s in shares)
        + " | load avg | shared_buffers |"
    )
    p(
        "\nCost against N (find similar end to end in process; text + filter: the retriever's "
        "kNN for synthetic text-like vectors, planner included, the encoder's cost excluded)"
    )
    p(head)
    p("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        cells = [
            f"{r['n']:,}",
            str(r["load_s"]),
            str(r["hnsw_build_s"]),
            str(r["table_mb"]),
            str(r["index_mb"]),
            f"{r['find_similar_p95_ms']} ({r['find_similar_recall@250']})",
            *(
                f"{r[f'text+filter {s} knn p95_ms']} ({r[f'text+filter {s} recall@250']})"
                for s in shares
            ),
            r["load_avg"],
            str(r["shared_buffers"]),
        ]
        p("| " + " | ".join(cells) + " |")


# HTTP ----------------------------------------------------------------------------------------
def http_section(
    args: argparse.Namespace,
    *,
    env: dict[str, str],
    cases: dict[str, list[dict[str, Any]]],
    docs: list[int],
) -> dict[str, Any]:
    from bench import web
    from bench.stats import percentiles

    def payload(query: dict[str, Any], *, use_cache: bool) -> dict[str, Any]:
        return web.body(
            text=query.get("text", ""),
            image=query.get("image"),
            document_id=query.get("document_id"),
            filters=query.get("filters"),
            use_cache=use_cache,
        )

    out: dict[str, Any] = {"workers": args.workers, "threads": args.threads}
    with web.serve(
        env=env,
        workers=args.workers,
        threads=args.threads,
        log=ROOT / "var" / "bench" / "gunicorn.log",
        root=ROOT,
        config="",
    ) as server:
        out["memory_idle"] = server.memory()
        client = web.Client(server.port)
        warm = {**cases["text+document+image"][0], "text": "warm up", "filters": FILTER}
        for query in (warm, warm):  # load the model, warm every path (not a timed query)
            status, parsed, _ = client.post(API_PATH, payload(query, use_cache=False))
            if status != 200:
                raise RuntimeError(f"API warm-up: HTTP {status}: {str(parsed)[:500]}")
        out["memory_warm"] = server.memory()
        latency: dict[str, Any] = {}
        for name, queries in cases.items():
            ms = []
            for query in queries:
                status, parsed, took = client.post(API_PATH, payload(query, use_cache=False))
                if status != 200:
                    raise RuntimeError(f"API {name}: HTTP {status}: {str(parsed)[:500]}")
                ms.append(took)
            latency[name] = {"latency_ms": percentiles(ms)}
            log(f"HTTP {name}: {latency[name]['latency_ms']}")
        out["latency"] = latency
        hits = []
        for query in cases["text+document"]:
            client.post(API_PATH, payload(query, use_cache=True))
            status, parsed, took = client.post(API_PATH, payload(query, use_cache=True))
            hits.append(took)
        out["cache_hit"] = {"latency_ms": percentiles(hits)}
        log(f"HTTP cache hit: {out['cache_hit']}")
        if args.levers:
            fresh = web.Client(server.port, keep_alive=False)
            ka, nka = [], []
            for doc in docs:
                ka.append(client.post(API_PATH, web.body(document_id=doc))[2])
                nka.append(fresh.post(API_PATH, web.body(document_id=doc))[2])
            out["keep_alive_lever"] = {
                "keep_alive_ms": percentiles(ka),
                "new_http_connection_ms": percentiles(nka),
            }
        # The load test: a mix like a gallery's traffic, every query distinct (cache misses).
        mix = load_mix(cases, n=args.n, seed=args.seed)
        log(f"load test: {args.concurrency_clients} clients for {args.concurrency_seconds:.0f} s")
        out["concurrency"] = web.load_test(
            port=server.port,
            path=API_PATH,
            payloads=mix,
            clients=args.concurrency_clients,
            seconds=args.concurrency_seconds,
        )
        log(f"load test: {out['concurrency']}")
        # Text alone, every text new: the encoder is the bottleneck, so the ceiling is cores ÷
        # the one-thread text tower's time (compared in verdicts()).
        texts = [f"{t} {i}" for i, t in enumerate(phrases(600, args.seed + 2))]
        log(f"text load test: {args.concurrency_clients} clients, {args.concurrency_seconds:.0f} s")
        out["concurrency_text"] = web.load_test(
            port=server.port,
            path=API_PATH,
            payloads=[web.body(text=text) for text in texts],
            clients=args.concurrency_clients,
            seconds=args.concurrency_seconds,
        )
        out["memory_after_load"] = server.memory()
        log(f"text load test: {out['concurrency_text']}")
    return out


def load_mix(cases: dict[str, list[dict[str, Any]]], *, n: int, seed: int) -> list[dict[str, Any]]:
    """600 distinct requests: 2/5 find similar, 1/5 text, 1/5 text + document, 1/10 image,
    1/10 text with a filter; texts never seen before (no vector-cache hits)."""
    from bench import web

    rng = random.Random(seed + 11)
    texts = [f"{t} {i}" for i, t in enumerate(phrases(600, seed + 1))]
    images = [q["image"] for q in cases["image"]]
    out = []
    for i, text in enumerate(texts):
        doc = rng.randint(1, n)
        kind = i % 10
        if kind < 4:
            out.append(web.body(document_id=doc))
        elif kind < 6:
            out.append(web.body(text=text))
        elif kind < 8:
            out.append(web.body(text=text, document_id=doc))
        elif kind == 8:
            out.append(web.body(image=images[i % len(images)]))
        else:
            out.append(web.body(text=text, filters=FILTER))
    return out


# Report ---------------------------------------------------------------------------------------
def verdicts(figures: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    http = figures.get("http", {}).get("latency", {})
    inproc = figures["inprocess"]
    for name, target in TARGETS.items():
        if name == "cache_hit":
            ip = figures["cache_hit"]["latency_ms"]["p95"]
            hp = figures.get("http", {}).get("cache_hit", {}).get("latency_ms", {}).get("p95")
        else:
            ip = inproc[name]["latency_ms"]["p95"]
            hp = http.get(name, {}).get("latency_ms", {}).get("p95")
        worst = max(x for x in (ip, hp) if x is not None)
        rows.append(
            {
                "target": f"{name} p95 <= {target:g} ms",
                "in_process": ip,
                "http": hp,
                "met": bool(worst <= target),
            }
        )
    for name, r in figures["recall"].items():
        rows.append(
            {
                "target": f"recall@250 >= {RECALL_TARGET} ({name})",
                "in_process": r["recall@250"],
                "http": None,
                "met": bool(r["recall@250"] >= RECALL_TARGET),
            }
        )
    if "facets" in figures:
        facets_p95 = figures["facets"]["facet_query_ms"]["p95"]
        rows.append(
            {
                "target": f"facets p95 <= {FACETS_TARGET:g} ms (the one query)",
                "in_process": facets_p95,
                "http": None,
                "met": bool(facets_p95 <= FACETS_TARGET),
            }
        )
    if "refusion" in figures:
        refusion_p95 = figures["refusion"]["latency_ms"]["p95"]
        rows.append(
            {
                "target": f"refusion p95 <= {REFUSION_TARGET:g} ms (re-weighted, lists cached)",
                "in_process": refusion_p95,
                "http": None,
                "met": bool(refusion_p95 <= REFUSION_TARGET),
            }
        )
    floor = figures.get("floor", {})
    if floor:
        tower = floor["text_tower_ms"]["p50"]
        text = inproc["text"]["latency_ms"]["p50"]
        rows.append(
            {
                "target": "text query p50 <= 1.3 x text tower p50",
                "in_process": round(text / tower, 2),
                "http": round(http["text"]["latency_ms"]["p50"] / tower, 2)
                if "text" in http
                else None,
                "met": bool(text <= 1.3 * tower),
            }
        )
    text_load = figures.get("http", {}).get("concurrency_text")
    if text_load and floor:
        one_core = floor.get("text_tower_1thread_ms", floor["text_tower_ms"])["p50"]
        ceiling = (os.cpu_count() or 1) * 1000 / one_core
        rows.append(
            {
                "target": f"text-only throughput >= 0.8 x cores / one-thread text tower "
                f"({ceiling:.1f}/s)",
                "in_process": None,
                "http": f"{text_load['throughput_rps']}/s, {text_load['errors']} err",
                "met": text_load["errors"] == 0
                and text_load["throughput_rps"] >= THROUGHPUT_SHARE * ceiling,
            }
        )
    conc = figures.get("http", {}).get("concurrency")
    if conc:
        rows.append(
            {
                "target": f"{conc['clients']} clients for {conc['seconds']:.0f} s, no error",
                "in_process": None,
                "http": f"{conc['requests']} req, {conc['errors']} err",
                "met": conc["errors"] == 0 and conc["requests"] > 0,
            }
        )
    return rows


def print_report(figures: dict[str, Any]) -> None:
    p = print  # noqa: T202 - the report is the output
    d = figures["data"]
    p("\n" + "=" * 96)
    p(
        f"Query benchmark: {d['n']} artworks, model {figures['model']['name']} "
        f"({figures['model']['parameters'] / 1e6:.0f}M parameters), "
        f"{figures['machine']['cpus']} CPUs, load {figures['machine']['load_start']} -> "
        f"{figures['machine']['load_end']}"
    )
    if "hnsw_build_s" in d:
        p(f"HNSW build (m 16, ef_construction 64): {d['hnsw_build_s']} s")
    p(
        "Sizes (MB): "
        + ", ".join(f"{k} {v}" for k, v in d["sizes"].items())
        + f"; shared_buffers {d.get('shared_buffers')}"
    )
    p("\nLatency ms (p50 / p95 / p99)         in process              HTTP")
    http = figures.get("http", {}).get("latency", {})
    for name, r in figures["inprocess"].items():
        a = r["latency_ms"]
        h = http.get(name, {}).get("latency_ms")
        hs = f"{h['p50']:>7} {h['p95']:>7} {h['p99']:>7}" if h else "-"
        p(f"  {name:<24} {a['p50']:>7} {a['p95']:>7} {a['p99']:>7}    {hs}")
    c = figures["cache_hit"]["latency_ms"]
    hc = figures.get("http", {}).get("cache_hit", {}).get("latency_ms")
    p(
        f"  {'cache hit':<24} {c['p50']:>7} {c['p95']:>7} {c['p99']:>7}    "
        + (f"{hc['p50']:>7} {hc['p95']:>7} {hc['p99']:>7}" if hc else "-")
    )
    if "facets" in figures:
        print_facets(figures["facets"])
    if "refusion" in figures:
        print_refusion(figures["refusion"])
    p("\nRecall against exact search (the retriever's kNN)  @10     @250    kNN p50/p95 ms")
    for name, r in figures["recall"].items():
        p(
            f"  {name:<46} {r['recall@10']:<7} {r['recall@250']:<7} "
            f"{r['knn_ms']['p50']} / {r['knn_ms']['p95']}"
        )
    planner = figures.get("planner")
    if planner:
        p(
            "\nFiltered kNN by selectivity (text-like queries; ms p50 / p95, recall@250); "
            "planner: the path knn() chooses"
        )
        p(f"  {'filter':<14} {'kept':>7} {'estimate':>8}  planner  {'exact':<24} index")
        for r in planner:
            e, i = r["exact_ms"], r["index_ms"]
            p(
                f"  {r['filter']:<14} {r['kept_rows']:>7} {r['estimated_rows']:>8}  "
                f"{r['chosen']:<7}  {e['p50']:>6} / {e['p95']:<6} ({r['exact_recall@250']})  "
                f"{i['p50']:>6} / {i['p95']:<6} ({r['index_recall@250']})"
            )
    f = figures.get("floor")
    if f:
        p(
            f"\nEncoder floor (torch threads {f['torch_threads']}): text tower p50 "
            f"{f['text_tower_ms']['p50']} ms, encode_texts {f['text_encode_ms']['p50']}; image "
            f"tower {f['image_tower_ms']['p50']} ms, encode_images {f['image_encode_ms']['p50']}"
        )
        if "text_tower_1thread_ms" in f:
            p(f"Text tower on one thread p50 {f['text_tower_1thread_ms']['p50']} ms")
    mem = figures.get("http", {}).get("memory_after_load")
    if mem:
        p(f"Web process memory after the load test: {mem}")
    for key, what in (("concurrency", "the mix"), ("concurrency_text", "text alone")):
        cpu = figures.get("http", {}).get(key, {}).get("cpu_ms_per_request")
        if cpu:
            p(
                f"CPU per request, {what}: {cpu['machine']} core-ms on the machine, of which "
                f"{cpu['clients']} in the load test's clients and {cpu['server']} in the "
                "server and its database"
            )
    p("\nTargets")
    for row in figures["verdicts"]:
        p(
            f"  [{'MET ' if row['met'] else 'MISS'}] {row['target']:<52} "
            f"in-process {row['in_process']}   http {row['http']}"
        )
    p("=" * 96)


# Main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.cost_sizes:
        return {"cost_table": cost_table(args)}
    env = configure_environment(args)
    import django

    django.setup()
    if args.cost_only:
        return cost_only(args)
    if args.facets_only:
        return facets_only(args)
    if args.refusion_only:
        return refusion_only(args)
    from django.core.management import call_command

    from bench import floor, synthetic
    from bench.model import parameter_count
    from bench.recall import measure_recall
    from bench.stats import loadavg

    figures: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "load_start": loadavg(),
        },
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    folder = model_folder(args)
    os.environ["GALLERY_EMBEDDING_MODEL"] = env["GALLERY_EMBEDDING_MODEL"] = str(folder)
    from django.conf import settings

    settings.GALLERY_EMBEDDING_MODEL = str(folder)
    from search.encoder import get_encoder, reset_encoder

    reset_encoder()
    # The encoder queries use: int8 when GALLERY_QUERY_QUANTIZE=int8 (--int8), else fp32.
    encoder = get_encoder(for_queries=True)
    figures["model"] = {
        "name": encoder.feature_name + (" int8" if args.int8 else ""),
        "folder": folder.name,
        "parameters": parameter_count(encoder),
    }
    figures["data"] = prepare_data(args, feature_name=encoder.feature_name, model=folder)
    feature_id = figures["data"]["feature_id"]

    spec = synthetic.Spec(n=args.n, seed=args.seed)
    matrix = synthetic.vectors(spec)
    meta = synthetic.metadata(spec)
    rng = random.Random(args.seed + 7)
    count = args.queries
    # every text query distinct: no vector-cache hits
    texts = phrases((4 + len(FILTER_CASES)) * count, args.seed)
    image_files = paintings(args)
    chosen = rng.sample(image_files, min(len(image_files), max(count, 8)))
    images = [p.read_bytes() for p in chosen]
    docs = rng.sample(range(1, args.n + 1), max(count, args.recall_queries))
    cases = query_cases(texts=texts, images=images, docs=docs, count=count)

    log("encoding the recall queries")
    from gallery.images import load_image

    rq = args.recall_queries
    text_vectors = encoder.encode_texts(texts[:rq])
    image_vectors = encoder.encode_images(
        [load_image(b).image for b in (images * rq)[:rq]], batch_size=8
    )
    sets = recall_sets(
        matrix=matrix,
        meta=meta,
        spec=spec,
        text_vectors=text_vectors,
        image_vectors=image_vectors,
        docs=docs[:rq],
    )
    figures["recall"] = {}
    for name, queries in sets.items():
        figures["recall"][name] = measure_recall(
            matrix=matrix, queries=queries, feature_id=feature_id, input_mode=recall_mode(name)
        )
        log(f"recall {name}: {figures['recall'][name]}")

    if args.planner_sweep:
        figures["planner"] = planner_sweep(
            matrix=matrix,
            meta=meta,
            spec=spec,
            feature_id=feature_id,
            count=min(rq, 10),
        )

    figures["inprocess"] = inprocess_latency(cases)
    figures["cache_hit"] = inprocess_cache_hits(cases["text+document"])
    log(f"cache hit: {figures['cache_hit']}")
    figures["facets"] = facets_section(docs[:count])
    log(f"facets: {figures['facets']}")
    figures["refusion"] = refusion_section(texts[:count], docs[:count])
    log(f"re-fusion: {figures['refusion']}")

    log("encoder floor")
    from PIL import Image

    first_image = Image.open(chosen[0]).convert("RGB")
    figures["floor"] = floor.tower_floor(encoder, image=first_image, runs=max(5, min(count, 15)))
    # What one core takes per text: the throughput ceiling is cores ÷ this, since concurrent
    # requests share the cores (a two-thread encode takes both for its whole time).
    figures["floor"]["text_tower_1thread_ms"] = floor.thread_sweep(
        encoder, runs=max(5, min(count, 15)), threads=(1,)
    )["text_tower_ms@1"]
    log(f"floor: {figures['floor']}")

    if args.levers:
        levers: dict[str, Any] = {}
        levers["torch_threads"] = floor.thread_sweep(encoder, runs=max(5, min(count, 10)))
        log(f"threads: {levers['torch_threads']}")
        levers["concurrent_knn"] = concurrent_knn_lever(
            encoder=encoder,
            texts=texts[: min(count, 15)],
            docs=docs[: min(count, 15)],
            matrix=matrix,
            feature_id=feature_id,
        )
        log(f"concurrent kNN: {levers['concurrent_knn']}")
        levers["persistent_connections"] = persistent_connection_lever(docs[:count])
        log(f"persistent connections: {levers['persistent_connections']}")
        levers["ef_search"] = ef_search_sweep(matrix=matrix, sets=sets, feature_id=feature_id)
        if args.halfvec:
            levers["halfvec"] = halfvec_lever(matrix=matrix, sets=sets, feature_id=feature_id)
        log("int8 quantisation")
        levers["int8"] = floor.int8_lever(
            encoder,
            images=image_files[: args.int8_images],
            phrases=texts[: min(len(texts), 32)],
            collection=matrix,
            runs=max(5, min(count, 10)),
        )
        log(f"int8: {levers['int8']}")
        if args.hnsw_grid:
            levers["hnsw_grid"] = hnsw_grid(
                args.hnsw_grid, matrix=matrix, sets=sets, feature_id=feature_id
            )
        figures["levers"] = levers

    if args.http:
        from django.db import connections

        connections.close_all()
        figures["http"] = http_section(args, env=env, cases=cases, docs=docs[:count])

    figures["machine"]["load_end"] = loadavg()
    figures["total_s"] = round(time.perf_counter() - started, 1)
    figures["verdicts"] = verdicts(figures)
    print_report(figures)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=_json_default))
        log(f"figures saved to {args.json}")
    return figures


def cost_only(args: argparse.Namespace) -> dict[str, Any]:
    """--cost-only: the data (loaded or reused), the index, and cost_section(); no encoder."""
    from django.core.management import call_command

    from bench.stats import loadavg

    figures: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_start": loadavg()}}
    call_command("migrate", verbosity=0)
    figures["data"] = prepare_data(
        args, feature_name="bench-synthetic", model=ROOT / "var" / "synthetic"
    )
    figures["cost"] = cost_section(args, feature_id=figures["data"]["feature_id"])
    figures["machine"]["load_end"] = loadavg()
    print_cost_table([cost_row(figures)])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=_json_default))
    return figures


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


if __name__ == "__main__":
    main()
