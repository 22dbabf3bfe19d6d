"""The API's request path alone: a cache-hit execute and a find-similar, in process (Django's
test client, optionally under cProfile) and over HTTP (gunicorn on 127.0.0.1), on an existing
bench database that `bench.query` loaded (by default `gallery_bench`, at whatever N it was run).

    python -m bench.request_path [--database gallery_bench] --requests 200 [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import pstats
import time
from pathlib import Path
from typing import Any

from bench.stats import percentiles

ROOT = Path(__file__).resolve().parent.parent
EXECUTE = "/api/retrievers/default/execute"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--database", default="gallery_bench")
    p.add_argument("--requests", type=int, default=200, help="timed requests per case")
    p.add_argument("--profile", action="store_true", help="cProfile the in-process requests")
    p.add_argument("--no-http", dest="http", action="store_false")
    p.add_argument("--json", type=Path, help="save the figures here")
    return p.parse_args(argv)


def cases(document_id: int) -> dict[str, tuple[str, str, bytes]]:
    """name -> (method, path, body): the cache hit is the document search with use_cache; find
    similar is that search without the cache (as bench.query times it), and the GET endpoint."""

    def execute(use_cache: bool) -> bytes:
        inputs = {"document_id": document_id}
        return json.dumps({"inputs": inputs, "limit": 24, "use_cache": use_cache}).encode()

    return {
        "cache_hit": ("POST", EXECUTE, execute(True)),
        "find_similar": ("POST", EXECUTE, execute(False)),
        "similar_get": ("GET", f"/api/artworks/{document_id}/similar", b""),
    }


def in_process(
    *, requests: dict[str, tuple[str, str, bytes]], n: int, profile: bool
) -> dict[str, Any]:
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    out: dict[str, Any] = {}
    for name, (method, path, body) in requests.items():

        def call(
            name: str = name, method: str = method, path: str = path, body: bytes = body
        ) -> None:
            if method == "POST":
                response = client.post(path, body, content_type="application/json")
            else:
                response = client.get(path)
            if response.status_code != 200:
                status = response.status_code
                raise RuntimeError(f"{name}: HTTP {status}: {response.content[:300]!r}")

        call()  # warm (and fill the cache)
        ms = []
        profiler = cProfile.Profile() if profile else None
        for _ in range(n):
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            call()
            if profiler:
                profiler.disable()
            ms.append((time.perf_counter() - started) * 1000)
        out[name] = percentiles(ms)
        print(f"in process {name}: {out[name]}", flush=True)
        if profiler:
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(25)
    return out


def over_http(
    *, requests: dict[str, tuple[str, str, bytes]], n: int, env: dict[str, str]
) -> dict[str, Any]:
    from bench import web

    out: dict[str, Any] = {}
    with web.serve(
        env=env, workers=1, threads=1, log=ROOT / "var" / "bench" / "request_path.log", root=ROOT
    ) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        for name, (method, path, body) in requests.items():
            headers = {"Content-Type": "application/json"} if body else {}
            ms = []
            for i in range(n + 2):  # two warm-up requests
                started = time.perf_counter()
                conn.request(method, path, body=body or None, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"{name}: HTTP {response.status}")
                if i >= 2:
                    ms.append((time.perf_counter() - started) * 1000)
            out[name] = percentiles(ms)
            print(f"HTTP {name}: {out[name]}", flush=True)
        conn.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from bench.query import configure_environment

    env = configure_environment(
        argparse.Namespace(database=args.database, torch_threads=1, int8=False)
    )
    from search.testmodel import ensure_test_model

    # Only stored vectors are searched; the web process loads this model at start.
    model = str(ensure_test_model(ROOT / "var" / "test-model"))
    os.environ["GALLERY_EMBEDDING_MODEL"] = env["GALLERY_EMBEDDING_MODEL"] = model
    import django

    django.setup()
    from search.models import Embedding

    document_id = Embedding.objects.order_by("artwork_id").values_list("artwork_id", flat=True)[0]
    requests = cases(document_id)
    figures: dict[str, Any] = {
        "in_process": in_process(requests=requests, n=args.requests, profile=args.profile)
    }
    if args.http:
        figures["http"] = over_http(requests=requests, n=args.requests, env=env)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
