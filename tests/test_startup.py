"""A web process is warm before it takes traffic, and says when it is ready.

The server tests start gunicorn exactly as production does (`-c python:gallery.gunicorn_conf`,
DEBUG off) on loopback, against a database of their own on the embedded server, with the offline
test model."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from pytest_django import Settings

from bench.gunicorn_process import (
    free_port,
    local_production_env,
    start_gunicorn,
    wait_answering,
)
from search.encoder import reset_encoder
from search.warmup import forget_warm_state, warm_query_encoder, warm_up_running
from tests.helpers import wait_until

ROOT = Path(settings.BASE_DIR)


@pytest.fixture
def fresh_warm_state() -> Iterator[None]:
    forget_warm_state()
    yield
    # A background warm-up ends inside the test that started it.
    wait_until(lambda: not warm_up_running(), timeout=120, what="the warm-up to end")
    forget_warm_state()
    reset_encoder()


@pytest.mark.django_db(transaction=True)
def test_readiness_is_false_until_the_query_encoder_is_loaded(
    client: Client,
    settings: Settings,
    test_encoder_settings: Path,
    tmp_path: Path,
    fresh_warm_state: None,
) -> None:
    # No model where the setting points (a volume not mounted yet, say): the process serves,
    # it is alive, and it is not ready.
    settings.GALLERY_EMBEDDING_MODEL = str(tmp_path / "model-not-there-yet")
    state = warm_query_encoder()
    assert state.loaded is False and "model-not-there-yet" in state.error

    assert client.get("/healthz").status_code == 200
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    assert response["Retry-After"]
    body = response.json()
    assert body["status"] == "not ready" and body["database"] == "ok"
    assert body["encoder"]["loaded"] is False

    # The model is there now: readiness retries the load in the background, without a restart.
    settings.GALLERY_EMBEDDING_MODEL = str(test_encoder_settings)
    deadline = time.monotonic() + 120
    while (status := client.get("/healthz/ready").status_code) != 200:
        assert time.monotonic() < deadline, "never became ready"
        time.sleep(0.2)
    body = client.get("/healthz/ready").json()
    assert body["status"] == "ready"
    assert body["encoder"]["loaded"] is True and body["encoder"]["feature"]
    assert status == 200


@pytest.mark.django_db
def test_readiness_starts_no_warm_up_in_a_process_that_does_not_warm(
    client: Client, fresh_warm_state: None
) -> None:
    """Management commands, workers and tests load no model because someone asked /healthz."""
    response = client.get("/healthz/ready")
    assert response.status_code == 503
    assert not warm_up_running()


# A real gunicorn ---------------------------------------------------------------------------------


def _request(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _drop(env: dict[str, str], name: str) -> None:
    script = (
        "from django.db import connection; import psycopg;"
        "p = connection.get_connection_params(); p['dbname'] = 'postgres';"
        "c = psycopg.connect(**p, autocommit=True);"
        f"c.execute('DROP DATABASE IF EXISTS {name} WITH (FORCE)')"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_DEBUG": "1", "GALLERY_DATABASE_NAME": "postgres"},
        check=True,
        capture_output=True,
        timeout=120,
    )


@contextlib.contextmanager
def _serve(
    command: list[str], *, env: dict[str, str], log: Path, base: str
) -> Iterator[dict[str, Any]]:
    """Start `command`, wait until it answers /healthz (liveness only: readiness is what the
    tests check on the very first answer), and stop it afterwards."""
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if _request(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield {"base": base, "server": server, "log": log}
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.fixture
def server_env(tmp_path: Path, test_model_dir: Path) -> Iterator[dict[str, str]]:
    """Production settings (DEBUG off), a database of the test's own, the offline test model."""
    database = "gallery_startup" + os.environ.get("GALLERY_TEST_DB_SUFFIX", "")
    env = local_production_env(
        database=database, model=test_model_dir, media_root=tmp_path / "media"
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    try:
        yield env
    finally:
        _drop(env, database)


@pytest.fixture
def production_gunicorn(server_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """gunicorn started by the project's config module, 2 workers, answering /healthz
    (liveness only: readiness is what the tests check on the very first answer)."""
    server = start_gunicorn(env=server_env, log=tmp_path / "gunicorn.log", root=ROOT, workers=2)
    try:
        wait_answering(server, timeout=300)
        yield {"base": server.base, "server": server.process, "log": server.log}
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def _first_search_is_warm(base: str) -> None:
    status, ready = _request(f"{base}/healthz/ready")
    assert status == 200, ready
    assert ready["encoder"]["loaded"] is True
    load_ms = ready["encoder"]["load_ms"]

    status, body = _request(
        f"{base}/api/retrievers/default/execute", {"inputs": {"text": "a first search"}}
    )
    assert status == 200, body
    (search,) = [s for s in body["stages"][0]["searches"] if s["input_mode"] == "text"]
    assert search["fallback"] == "" and search["vector_cached"] is False
    # The text was encoded, and the encoder was not loaded for it: loading (with the first
    # encodes) took the warm-up many times what this search's encoding took.
    assert 0 < search["encode_ms"] * 3 < load_ms, (search, load_ms)


def test_the_demo_server_is_ready_at_its_first_answer_and_its_first_search_is_warm(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    """`manage.py runserver` (what `make demo` serves with) warms before it listens."""
    port = free_port()
    env = {**server_env, "DJANGO_DEBUG": "1"}
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    base = f"http://127.0.0.1:{port}"
    with _serve(command, env=env, log=tmp_path / "runserver.log", base=base):
        _first_search_is_warm(base)


def test_a_started_server_is_ready_at_its_first_answer_and_its_first_search_is_warm(
    production_gunicorn: dict[str, Any],
) -> None:
    _first_search_is_warm(production_gunicorn["base"])

    # The master warmed the encoder before it listened: no worker could take a request earlier.
    lines = production_gunicorn["log"].read_text().splitlines()
    warmed = next(i for i, line in enumerate(lines) if line.startswith("Query encoder <"))
    listening = next(i for i, line in enumerate(lines) if "Listening at" in line)
    assert warmed < listening


def test_a_preloaded_server_stops_promptly(production_gunicorn: dict[str, Any]) -> None:
    """Workers forked from a master that loaded the model leave without tearing down the
    runtime's inherited thread pools, which blocked them until the master gave up waiting
    (graceful_timeout) and killed them."""
    base, server = production_gunicorn["base"], production_gunicorn["server"]
    status, _ = _request(f"{base}/api/retrievers/default/execute", {"inputs": {"text": "boats"}})
    assert status == 200
    from gallery import gunicorn_conf

    # Both workers serve, their signal handlers in place (a signal that lands while a worker is
    # still starting is another story).
    wait_until(
        lambda: production_gunicorn["log"].read_text().count("Worker ready") == 2,
        timeout=60,
        what="both workers to be ready",
    )
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=gunicorn_conf.graceful_timeout + 60)
    assert server.returncode == 0
    log = production_gunicorn["log"].read_text()

    # Every worker left by itself: none was killed when the master's graceful_timeout ran out.
    assert "was sent SIGKILL" not in log, log
    assert log.count("Worker exiting") == 2, log
