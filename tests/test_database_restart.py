"""The database restarted under a running web process: clean 503s, then recovery by itself.

The test runs its own embedded PostgreSQL (a fresh data folder) and its own gunicorn process, so
stopping that server disturbs nothing else."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=180,
        capture_output=True,
    )


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="gallery.settings",
        DJANGO_DEBUG="1",
        GALLERY_PGDATA=str(tmp_path / "pg"),
        MEDIA_ROOT=str(tmp_path / "media"),
    )
    _manage(env, "migrate", "--noinput")
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "gallery.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if _get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        yield base, env
    finally:
        server.terminate()
        server.wait(timeout=20)
        _manage(env, "embedded_db", "stop")


def test_database_restart_gives_503_then_recovers_without_restarting_web(web) -> None:  # type: ignore[no-untyped-def]
    base, env = web
    assert _get(f"{base}/healthz") == (200, '{"status": "ok"}')
    assert _get(f"{base}/")[0] == 200

    _manage(env, "embedded_db", "stop")
    status, body = _get(f"{base}/healthz")
    assert status == 503
    assert "unavailable" in body
    status, body = _get(f"{base}/")
    assert status == 503 and "Temporarily unavailable" in body

    _manage(env, "embedded_db", "start")
    deadline = time.monotonic() + 15
    statuses = []
    while time.monotonic() < deadline:
        statuses.append(_get(f"{base}/healthz")[0])
        if statuses[-1] == 200:
            break
        time.sleep(0.5)
    assert statuses[-1] == 200, statuses
    assert _get(f"{base}/")[0] == 200


@pytest.mark.django_db
def test_every_query_runs_under_a_statement_timeout() -> None:
    from django.db import OperationalError, connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "30s"
        cursor.execute("SET LOCAL statement_timeout = '50ms'")
        with pytest.raises(OperationalError, match="statement timeout"):
            cursor.execute("SELECT pg_sleep(1)")
