"""The demo's server keeps its database connections bounded under concurrent traffic.

`make demo` serves with `manage.py runserver`, which starts a thread per request. The server
runs here exactly so (the autoreloader included), on this test's database, with the settings a
user gets; 30 concurrent clients on loopback send 600 requests (pages, searches that use the
retriever's helper thread, the API, artwork pages) while another connection samples
pg_stat_activity for that database. The count must stay within the stated bound and no answer
may be a 5xx. The load stops as soon as the bound is passed, so a regression cannot exhaust
the shared server's connections."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection

from bench.gunicorn_process import free_port
from tests.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

CLIENTS = 30
REQUESTS = 600


SERVER_APPLICATION = "gallery-server-under-test"


def connection_bound() -> int:
    """Connections one web process may hold: its pool plus the retriever's helper threads."""
    return settings.DATABASE_POOL_MAX_SIZE + settings.SEARCH_HELPER_CONNECTIONS


def _request(url: str, body: dict[str, Any] | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)


@pytest.fixture
def demo_server(encoded_corpus: Any, tmp_path: Path) -> Iterator[tuple[str, list[int], Path]]:
    corpus, _, _ = encoded_corpus
    # The retrievers a migration creates (an earlier transactional test may have flushed them).
    migration = importlib.import_module("search.migrations.0002_retrievers_fts_cache")
    migration.create_default_retrievers(apps, None)
    database = connection.settings_dict["NAME"]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="gallery.settings",
        DJANGO_DEBUG="1",
        GALLERY_DATABASE_NAME=database,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        GALLERY_EMBEDDING_MODEL=str(settings.GALLERY_EMBEDDING_MODEL),
        GALLERY_EMBEDDING_FALLBACK="0",
        GALLERY_EMBEDDING_DEVICE="cpu",
        GALLERY_TORCH_THREADS="1",
        HF_HUB_OFFLINE="1",
        CELERY_BROKER_URL="memory://",
        # One client address sends everything here: the rate limit is not what is measured.
        GALLERY_RATE_LIMIT_PER_MINUTE="1000000",
        # libpq names every connection the server opens: those are the ones counted.
        PGAPPNAME=SERVER_APPLICATION,
    )
    port = free_port()
    log = tmp_path / "runserver.log"
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the autoreloader's child too
    )
    base = f"http://127.0.0.1:{port}"
    connection.close()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if _request(f"{base}/healthz") == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        yield base, corpus.ids, log
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
        except ProcessLookupError:  # it had already exited (its log is in the failure)
            pass
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


class Sampler(threading.Thread):
    """Counts the server's client connections to `database` every 20 ms (by its application
    name: this process's own pool may keep a connection to the same database open).

    A helper thread's connection is closed when its search is done, and its backend is still
    listed for a moment while it exits, beside the helper's next one: `peak` is the largest
    count that held for two samples in a row, `raw_peak` the largest single sample."""

    def __init__(self, database: str, bound: int) -> None:
        super().__init__(daemon=True)
        self.database, self.bound = database, bound
        self.peak = self.raw_peak = self.samples = 0
        self.over_bound = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        params = connection.settings_dict
        previous = 0
        with psycopg.connect(
            dbname="postgres",
            user=params["USER"],
            host=params["HOST"],
            port=params["PORT"] or None,
            password=params.get("PASSWORD") or None,
            autocommit=True,
        ) as conn:
            while not self.done.is_set():
                # Client backends only: autovacuum and parallel query workers also list the
                # database while they run, but they hold slots of their own, not connections.
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND backend_type = 'client backend' AND application_name = %s",
                    [self.database, SERVER_APPLICATION],
                ).fetchone()
                count = int(row[0]) if row else 0
                self.samples += 1
                self.raw_peak = max(self.raw_peak, count)
                self.peak = max(self.peak, min(previous, count))
                if self.peak > self.bound:
                    self.over_bound.set()  # stop the load: the shared server has its limits
                previous = count
                time.sleep(0.02)


def test_runserver_keeps_connections_bounded_under_concurrent_load(
    demo_server: tuple[str, list[int], Path],
) -> None:
    base, ids, log = demo_server
    bound = connection_bound()
    requests: list[tuple[str, dict[str, Any] | None]] = [
        ("/", None),
        ("/?q=a+storm+at+sea", None),
        (f"/?similar={ids[1]}", None),
        (f"/artworks/{ids[2]}/", None),
        ("/api/artworks", None),
        (f"/api/artworks/{ids[3]}/similar", None),
        # text + document: the document's kNN runs on the helper thread while text is encoded
        (
            "/api/retrievers/default/execute",
            {"inputs": {"text": "a storm at sea", "document_id": ids[4]}},
        ),
        ("/healthz", None),
    ]
    sampler = Sampler(str(connection.settings_dict["NAME"]), bound)
    sampler.start()
    statuses: Counter[int] = Counter()
    by_path: Counter[tuple[str, int]] = Counter()
    errors: list[str] = []
    lock = threading.Lock()
    sent = iter(range(REQUESTS))

    def client() -> None:
        while not sampler.over_bound.is_set():
            with lock:
                n = next(sent, None)
            if n is None:
                return
            path, body = requests[n % len(requests)]
            try:
                status = _request(base + path, body)
            except OSError as exc:
                with lock:
                    errors.append(f"{path}: {exc}")
                continue
            with lock:
                statuses[status] += 1
                by_path[path, status] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    elapsed = time.monotonic() - started
    # Connections released at the very end are still counted: a few more samples first.
    taken = sampler.samples
    wait_until(
        lambda: sampler.samples >= taken + 10,
        timeout=60,
        what="ten more samples",
        give_up=lambda: not sampler.is_alive(),
    )
    sampler.done.set()
    sampler.join(10)

    print(
        f"{sum(statuses.values())} requests from {CLIENTS} clients in {elapsed:.1f} s; "
        f"statuses {dict(statuses)}; peak {sampler.peak} connections (single sample "
        f"{sampler.raw_peak}; {sampler.samples} samples), bound {bound}"
    )
    assert sampler.peak <= bound, f"{sampler.peak} connections, bound {bound}"
    assert sampler.peak >= 2  # the server's connections were seen: the count measures them
    assert sampler.raw_peak <= bound + settings.SEARCH_HELPER_CONNECTIONS
    unusual = [line for line in log.read_text().splitlines() if '" 200 ' not in line]
    assert not errors, (errors[:5], unusual[-40:])
    assert sum(statuses.values()) == REQUESTS
    assert not [s for s in statuses if s >= 500], dict(statuses)
    assert statuses[200] >= REQUESTS * 0.9, dict(by_path)
