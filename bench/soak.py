"""Soak: mixed queries for a minute against a real web process while an import runs beside it.

Loopback only, bounded in time and request count. Reports request counts, errors (must be 0) and
the web process's memory growth. Uses its own database on the embedded server, so it never
touches the development data:

    .venv/bin/python bench/soak.py --seconds 60 --clients 8
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PAINTINGS = ROOT.parent / "shared" / "data" / "aic-paintings"
PHRASES = [
    "portrait",
    "river landscape",
    "still life with fruit",
    "a woman in blue",
    "storm at sea",
    "saint",
    "flowers",
    "horse",
    "winter",
    "city street at night",
]


def _env(database: str, media: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="gallery.settings",
        DJANGO_DEBUG="1",
        GALLERY_DATABASE_NAME=database,
        MEDIA_ROOT=str(media),
        CELERY_BROKER_URL="memory://",  # the import's embedding tasks are not the subject here
        GALLERY_RATE_LIMIT_PER_MINUTE="1000000",
        HF_HUB_OFFLINE="1",
    )
    return env


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (gunicorn master + workers)."""
    total = 0
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=20_000, help="stop after this many")
    parser.add_argument(
        "--database", default=f"gallery_soak_{os.getpid()}", help="created, then dropped"
    )
    parser.add_argument("--paintings", type=Path, default=DEFAULT_PAINTINGS)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # run as a script, bench/ alone is on the path
    from bench.gunicorn_process import start_gunicorn, stop_gunicorn, wait_answering

    work = Path(tempfile.mkdtemp(prefix="gallery-soak-"))
    env = _env(args.database, work / "media")
    try:
        _manage(env, "migrate", "--noinput")
        # A first collection to query: the bundled sample, embedded in-process.
        _manage(env, "import_aic", str(ROOT / "sample" / "aic"))
        _manage(env, "embed", "--missing", "--sync")
        listing = (
            "from search.models import Embedding as E; print(*E.objects.values_list('artwork'))"
        )
        ids = [
            int(x.strip("(),"))
            for x in _manage(env, "shell", "--verbosity", "0", "-c", listing).split()
        ]
        web = start_gunicorn(
            env=env,
            log=work / "gunicorn.log",
            root=ROOT,
            workers=1,
            threads=4,
            config=None,
            options=["--timeout", "120"],
        )
        base = web.base
        wait_answering(web, timeout=120)
        _get(f"{base}/api/retrievers/default/execute", {"inputs": {"text": "warm up"}})
        rss_start = _rss_mb(web.process.pid)

        # The import runs beside the queries: every painting of the shared folder (267), as new
        # local records (under their AIC ids they would replace the queried sample's images).
        importer = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "import_folder",
                str(args.paintings / "images"),
                "--source",
                "local",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        counts: Counter[str] = Counter()
        errors: list[str] = []
        lock = threading.Lock()
        deadline = time.monotonic() + args.seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                with lock:
                    if sum(counts.values()) >= args.max_requests:
                        return
                kind = rng.choice(["text", "similar", "text+similar", "page", "keywords", "detail"])
                try:
                    status = _query(base, kind, rng, ids)
                except Exception as exc:  # a refused connection or a timeout is an error too
                    status, detail = 0, repr(exc)
                else:
                    detail = ""
                with lock:
                    counts[kind] += 1
                    if status != 200:
                        errors.append(f"{kind}: {status} {detail}")

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        peak = rss_start
        while any(t.is_alive() for t in threads):
            peak = max(peak, _rss_mb(web.process.pid))
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        importer_err = importer.communicate(timeout=1800)[1]
        rss_end = _rss_mb(web.process.pid)
        stop_gunicorn(web, timeout=30)

        figures = {
            "seconds": round(elapsed, 1),
            "clients": args.clients,
            "requests": sum(counts.values()),
            "requests_per_second": round(sum(counts.values()) / elapsed, 1),
            "by_kind": dict(counts),
            "errors": len(errors),
            "first_errors": errors[:5],
            "import_exit_code": importer.returncode,
            "web_rss_mb": {"start": round(rss_start), "peak": round(peak), "end": round(rss_end)},
            "web_rss_growth_mb": round(rss_end - rss_start, 1),
        }
        print(json.dumps(figures, indent=2))
        if importer.returncode:
            print(importer_err, file=sys.stderr)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(figures, indent=2))
        if errors or importer.returncode:
            raise SystemExit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _drop_database(args.database)


def _drop_database(name: str) -> None:
    """Drop the soak's database from the embedded server (nothing to do with DATABASE_URL)."""
    import psycopg

    sys.path.insert(0, str(ROOT))
    from gallery.config import Config
    from gallery.embedded_db import ensure_server

    config = Config()
    if config.DATABASE_URL:
        return
    socket_dir = ensure_server(
        pgdata=config.GALLERY_PGDATA, shared_buffers=config.GALLERY_PG_SHARED_BUFFERS
    )
    with psycopg.connect(dbname="postgres", user="postgres", host=socket_dir, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _query(base: str, kind: str, rng: random.Random, ids: list[int]) -> int:
    text = rng.choice(PHRASES)
    if kind == "text":
        return _get(f"{base}/api/retrievers/default/execute", {"inputs": {"text": text}})
    if kind == "similar":
        return _get(f"{base}/api/artworks/{rng.choice(ids)}/similar")
    if kind == "text+similar":
        inputs = {"text": text, "document_id": rng.choice(ids)}
        return _get(f"{base}/api/retrievers/default/execute", {"inputs": inputs})
    if kind == "keywords":
        return _get(f"{base}/api/retrievers/hybrid/execute", {"inputs": {"text": text}})
    if kind == "detail":
        return _get(f"{base}/artworks/{rng.choice(ids)}/")
    return _get(f"{base}/?" + urllib.parse.urlencode({"q": text}))


def _get(url: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


if __name__ == "__main__":
    main()
