"""halfvec storage, measured as the model would store it: a real halfvec(768) column.

HISTORICAL: this is the measurement that led to search/migrations/0004, which made
search_embedding.vector itself halfvec(768). Run against a database migrated past 0004 its
"vector" rows no longer measure float32 storage (bench.query's storage lever compares a float32
index instead). Kept for the record of how the figures in the migration were obtained.

    .venv/bin/python -m bench.halfvec --n 120000     # after bench.query loaded that N

bench.query's halfvec lever indexes `vector::halfvec(768)` beside the float column, which shows
the index's recall and size; but rows then still hold 3 KB float vectors, which PostgreSQL
TOASTs (stores out of line: anything over ~2 KB). A halfvec(768) value is 1.5 KB and stays in
the row, so every distance the query computes from the heap (the SELECT list, filters' re-checks,
an exact scan) reads one page instead of a TOAST chain. This copies the embeddings into a side
table `bench_embedding_half` (bench database only), indexes it like the model does, and compares
kNN latency, recall and exact-scan time with the float column.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np


def _knn(
    table: str, kind: str, vector: np.ndarray, *, ef: int, exact: bool = False
) -> tuple[list[int], float]:
    from django.db import connection, transaction
    from pgvector import Vector

    literal = Vector(np.asarray(vector, dtype=np.float32)).to_text()  # cast to either kind
    sql = (
        f"WITH nearest AS MATERIALIZED (SELECT e.artwork_id, e.vector <=> %s::{kind} AS d "
        f"FROM {table} e WHERE e.feature_id = %s ORDER BY e.vector <=> %s::{kind} LIMIT 250) "
        "SELECT artwork_id FROM nearest ORDER BY d, artwork_id"
    )
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), "
            "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
            "set_config('statement_timeout', '0', true), "
            "set_config('enable_indexscan', %s, true)",
            [str(ef), "off" if exact else "on"],
        )
        started = time.perf_counter()
        cur.execute(sql, [literal, _feature_id(), literal])
        ids = [int(r[0]) for r in cur.fetchall()]
    return ids, (time.perf_counter() - started) * 1000


_FEATURE: list[int] = []


def _feature_id() -> int:
    from django.db import connection

    if not _FEATURE:
        with connection.cursor() as cur:
            cur.execute("SELECT id FROM search_feature WHERE is_active")
            _FEATURE.append(int(cur.fetchone()[0]))
    return _FEATURE[0]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from bench.query import configure_environment

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=120_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--database", default="gallery_bench")
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--exact-queries", type=int, default=5)
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    configure_environment(argparse.Namespace(database=args.database, torch_threads=0))
    import django

    django.setup()
    from django.db import connection

    from bench import synthetic
    from bench.recall import exact_ids, recall
    from bench.stats import percentiles

    spec = synthetic.Spec(n=args.n, seed=args.seed)
    with connection.cursor() as cur:
        if synthetic.loaded_key(cur) != spec.key():
            raise SystemExit(f"load the data first: python -m bench.query --n {args.n}")
    out: dict[str, Any] = {"n": args.n}
    with connection.cursor() as cur:
        cur.execute("SET statement_timeout = 0")
        cur.execute("DROP TABLE IF EXISTS bench_embedding_half")
        started = time.perf_counter()
        cur.execute(
            "CREATE TABLE bench_embedding_half AS SELECT artwork_id, feature_id, "
            "vector::halfvec(768) AS vector FROM search_embedding"
        )
        out["copy_s"] = round(time.perf_counter() - started, 1)
        cur.execute("VACUUM ANALYZE bench_embedding_half")
        cur.execute("SET maintenance_work_mem = '2GB'")
        cur.execute("SET max_parallel_maintenance_workers = 2")
        started = time.perf_counter()
        cur.execute(
            "CREATE INDEX bench_embedding_half_hnsw ON bench_embedding_half USING hnsw "
            "(vector halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
        out["hnsw_build_s"] = round(time.perf_counter() - started, 1)
        cur.execute(
            "SELECT pg_table_size('bench_embedding_half'), "
            "pg_relation_size('bench_embedding_half_hnsw'), pg_table_size('search_embedding'), "
            "pg_relation_size('embedding_vector_hnsw')"
        )
        half_table, half_index, table, index = (x / 2**20 for x in cur.fetchone())
        cur.execute("RESET statement_timeout")
    out["sizes_mb"] = {
        "halfvec_table": round(half_table, 1),
        "halfvec_hnsw": round(half_index, 1),
        "vector_table": round(table, 1),
        "vector_hnsw": round(index, 1),
    }
    print("halfvec column:", out, flush=True)  # noqa: T201

    matrix = synthetic.vectors(spec)
    rng = np.random.default_rng(args.seed + 21)
    sets = {
        "image_like": synthetic.fresh_queries(spec, args.queries),
        "text_like": synthetic.fresh_queries(spec, args.queries, gap=0.6),
    }
    for name, queries in sets.items():
        for table, kind in (("search_embedding", "vector"), ("bench_embedding_half", "halfvec")):
            for ef in (400, 600):
                r250, ms = [], []
                for q in queries:
                    ids, took = _knn(table, kind, q, ef=ef)
                    r250.append(recall(ids, exact_ids(matrix, q, 250), 250))
                    ms.append(took)
                row = {"recall@250": round(float(np.mean(r250)), 4), "knn_ms": percentiles(ms)}
                out[f"{name}:{kind}:ef{ef}"] = row
                print(name, kind, ef, row, flush=True)  # noqa: T201
    for table, kind in (("search_embedding", "vector"), ("bench_embedding_half", "halfvec")):
        ms = [
            _knn(table, kind, q, ef=400, exact=True)[1]
            for q in rng.permutation(sets["image_like"])[: args.exact_queries]
        ]
        out[f"exact_scan:{kind}"] = percentiles(ms)
        print("exact scan", kind, out[f"exact_scan:{kind}"], flush=True)  # noqa: T201
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_embedding_half")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return out


if __name__ == "__main__":
    main()
