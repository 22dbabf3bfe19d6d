"""The first search after a start, beside the tenth, and the web processes' memory.

Starts gunicorn the way production does (`-c python:gallery.gunicorn_conf`, DEBUG off, one torch
thread as in docker/compose.yaml) on loopback, against a database of its own on the embedded
server (a few paintings imported and embedded with the same model), once per mode:

  cold     GALLERY_WARM_QUERY_ENCODER=0, no preload: the encoder loads on first use (the old way)
  worker   each worker loads and warms its own encoder before it serves (GALLERY_WEB_PRELOAD=0)
  preload  the master loads and warms it once, then forks the workers (the default)

For each: seconds from start until the server answers, then N text searches one after the
other (distinct texts, so no cache hit), each's time over HTTP and the encode time its response
reports; then a concurrent burst so every worker has run the model, and RSS / PSS of the master
and every worker from /proc/<pid>/smaps_rollup; then seconds to stop.

    python -m bench.startup                 # the offline test model (quick)
    python -m bench.startup --base          # SigLIP base's architecture (random weights)

Figures go to var/bench/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.gunicorn_process import local_production_env

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench" / "startup.json"
DATABASE = "gallery_bench_startup"
PHRASES = [
    "a portrait of a woman in a blue dress",
    "boats on a river at sunset",
    "still life with flowers",
    "a snowy landscape",
    "saint in red robes",
    "a man with a hat",
    "the sea in a storm",
    "children playing in a garden",
    "a city street in the rain",
    "horses in a field",
    "a bowl of fruit",
    "mountains and a lake",
    "a dancer on a stage",
    "a church interior",
    "a girl reading a book",
    "a bridge over water",
]


def _env(*, model: Path, work: Path, mode: str) -> dict[str, str]:
    env = local_production_env(
        database=DATABASE,
        model=model,
        media_root=work / "media",
        GALLERY_TORCH_THREADS="1",
        GALLERY_RATE_LIMIT_PER_MINUTE="100000",
        GALLERY_WARM_QUERY_ENCODER="0" if mode == "cold" else "1",
        GALLERY_WEB_PRELOAD="1" if mode == "preload" else "0",
    )
    env.pop("REDIS_CACHE_URL", None)  # each process's own memory cache: no shared result cache
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**env, "DJANGO_DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def _prepare(env: dict[str, str], *, work: Path, paintings: int) -> None:
    """Migrate, import `paintings` of the bundled sample, embed them with the bench's model."""
    _manage(env, "migrate", "--noinput")
    folder = work / "paintings"
    folder.mkdir()
    for image in sorted((ROOT / "sample" / "aic" / "images").glob("*.jpg"))[:paintings]:
        shutil.copy(image, folder / image.name)
    _manage(env, "import_folder", str(folder), "--source", "bench-startup")
    _manage(env, "embed", "--missing", "--sync")


def _request(port: int, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any, float]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        headers={"Content-Type": "application/json"} if data else {},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    ms = (time.perf_counter() - started) * 1000
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = payload[:200].decode(errors="replace")
    return status, parsed, ms


def _search(port: int, text: str) -> dict[str, Any]:
    status, body, ms = _request(port, "/api/retrievers/default/execute", {"inputs": {"text": text}})
    if status != 200:
        raise RuntimeError(f"search {text!r}: {status} {body}")
    searches = body["stages"][0]["searches"]
    text_search = next(s for s in searches if s["input_mode"] == "text")
    return {
        "text": text,
        "http_ms": round(ms, 1),
        "encode_ms": text_search["encode_ms"],
        "vector_cached": text_search["vector_cached"],
        "fallback": text_search["fallback"],
    }


def _memory(pid: int) -> dict[str, Any]:
    import psutil

    master = psutil.Process(pid)
    rows: list[dict[str, Any]] = []
    for process in [master, *master.children()]:
        fields: dict[str, int] = {}
        for line in Path(f"/proc/{process.pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0])  # kB
        role = "master" if process.pid == pid else "worker"
        rows.append(
            {
                "role": role,
                "rss_mb": round(fields["Rss"] / 1024, 1),
                "pss_mb": round(fields["Pss"] / 1024, 1),
            }
        )
    return {
        "processes": rows,
        "rss_total_mb": round(sum(r["rss_mb"] for r in rows), 1),
        "pss_total_mb": round(sum(r["pss_mb"] for r in rows), 1),
    }


def run_mode(*, mode: str, env: dict[str, str], workers: int, searches: int, log: Path) -> Any:
    from bench.gunicorn_process import start_gunicorn, stop_gunicorn, wait_answering

    started = time.perf_counter()
    server = start_gunicorn(env=env, log=log, root=ROOT, workers=workers)
    port = server.port
    try:
        wait_answering(server, timeout=600)
        answering_s = time.perf_counter() - started
        series = [_search(port, PHRASES[i % len(PHRASES)] + f" #{i}") for i in range(searches)]
        ready = _request(port, "/healthz/ready")[1]
        with ThreadPoolExecutor(workers) as pool:  # every worker runs the model at least once
            list(pool.map(lambda i: _search(port, f"burst {i}"), range(workers * 4)))
        memory = _memory(server.process.pid)
    except Exception:
        print(log.read_text()[-4000:], file=sys.stderr)  # noqa: T201 - why the run failed
        raise
    finally:
        stopping = time.perf_counter()
        stop_gunicorn(server, timeout=120)
        stop_s = time.perf_counter() - stopping
    return {
        "mode": mode,
        "workers": workers,
        "answering_s": round(answering_s, 2),
        "ready": ready,
        "searches": series,
        "first": series[0],
        "tenth": series[min(9, len(series) - 1)],
        "memory": memory,
        "stop_s": round(stop_s, 2),
    }


def _machine() -> dict[str, Any]:
    model = ""
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    return {"cpu": model, "cores": os.cpu_count(), "load": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", action="store_true", help="SigLIP base's architecture")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--searches", type=int, default=10)
    parser.add_argument("--paintings", type=int, default=12)
    parser.add_argument("--modes", default="cold,worker,preload")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.conf import settings

    from search.testmodel import ensure_test_model

    test_model = ensure_test_model(Path(settings.BASE_DIR) / "var" / "test-model")
    model = test_model
    if args.base:
        from bench.model import ensure_base_model

        model = ensure_base_model(ROOT / "var" / "siglip-base-random", test_model_dir=test_model)

    work = Path(tempfile.mkdtemp(prefix="gallery-startup-"))
    machine = _machine()
    results = []
    try:
        env = _env(model=model, work=work, mode="preload")
        _manage(env, "embedded_db", "start")
        _drop_database(env)
        _prepare(env, work=work, paintings=args.paintings)
        for mode in args.modes.split(","):
            env = _env(model=model, work=work, mode=mode)
            result = run_mode(
                mode=mode,
                env=env,
                workers=args.workers,
                searches=args.searches,
                log=work / f"gunicorn-{mode}.log",
            )
            results.append(result)
            first, tenth, memory = result["first"], result["tenth"], result["memory"]
            print(  # noqa: T201 - a benchmark prints its figures
                f"{mode:8} answering after {result['answering_s']:6.1f} s | first search "
                f"{first['http_ms']:8.1f} ms (encode {first['encode_ms']:8.1f}) | tenth "
                f"{tenth['http_ms']:6.1f} ms (encode {tenth['encode_ms']:6.1f}) | RSS "
                f"{memory['rss_total_mb']:7.1f} MB, PSS {memory['pss_total_mb']:7.1f} MB | "
                f"stop {result['stop_s']:.1f} s",
                flush=True,
            )
    finally:
        _drop_database(_env(model=model, work=work, mode="preload"))
        shutil.rmtree(work, ignore_errors=True)
    machine["load_after"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps({"machine": machine, "model": str(model), "results": results}, indent=2)
    )
    print(f"machine: {machine}; figures in {OUT}")  # noqa: T201


def _drop_database(env: dict[str, str]) -> None:
    """The bench's own database goes (a stale one would keep another model's feature)."""
    script = (
        "from django.db import connection; import psycopg;"
        "p = connection.get_connection_params(); p['dbname'] = 'postgres';"
        "c = psycopg.connect(**p, autocommit=True);"
        f"c.execute('DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)')"
    )
    _manage({**env, "GALLERY_DATABASE_NAME": "postgres"}, "shell", "-c", script)


if __name__ == "__main__":
    main()
