"""The database restarted under a running web process: still alive, not ready, styled 503s that
need no database, then recovery by itself.

The test runs its own embedded PostgreSQL (a fresh data folder) and its own gunicorn process, so
stopping that server disturbs nothing else."""

from __future__ import annotations

import json
import os
import re
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

from bench.gunicorn_process import serve_gunicorn
from tests.fixtures.browser import SCREENSHOTS

ROOT = Path(settings.BASE_DIR)


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
def web(tmp_path: Path, test_model_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="gallery.settings",
        DJANGO_DEBUG="1",
        GALLERY_PGDATA=str(tmp_path / "pg"),
        MEDIA_ROOT=str(tmp_path / "media"),
        GALLERY_EMBEDDING_MODEL=str(test_model_dir),
        HF_HUB_OFFLINE="1",
    )
    _manage(env, "migrate", "--noinput")
    try:
        # The master loads and warms the model before it answers.
        with serve_gunicorn(
            env=env,
            log=tmp_path / "gunicorn.log",
            root=ROOT,
            workers=1,
            ready_path="/healthz/ready",
        ) as server:
            yield server.base, env
    finally:
        _manage(env, "embedded_db", "stop")


@pytest.mark.browser
def test_database_restart_gives_styled_503s_then_recovers_without_restarting_web(
    web: tuple[str, dict[str, str]], chromium: Any
) -> None:
    base, env = web
    assert _get(f"{base}/healthz") == (200, '{"status": "ok"}')
    assert _get(f"{base}/healthz/ready")[0] == 200
    assert _get(f"{base}/")[0] == 200

    _manage(env, "embedded_db", "stop")
    # Alive (nothing to restart), not ready (send no traffic here).
    assert _get(f"{base}/healthz") == (200, '{"status": "ok"}')
    status, body = _get(f"{base}/healthz/ready")
    assert status == 503
    ready = json.loads(body)
    assert ready["database"].startswith("unavailable") and ready["encoder"]["loaded"] is True

    # The page: styled, with a way home and a retry that honours Retry-After.
    try:
        urllib.request.urlopen(f"{base}/?q=boats", timeout=10)
        raise AssertionError("the page answered while its database was down")
    except urllib.error.HTTPError as exc:
        assert exc.code == 503
        assert exc.headers["Retry-After"] == "5"
        html = exc.read().decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "Temporarily unavailable" in html
    assert '<a href="/">Back to the search page</a>' in html
    assert 'data-retry-after="5"' in html
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert stylesheet is not None
    assert _get(base + stylesheet.group(1))[0] == 200  # static files need no database

    # In a real browser: the stylesheet applies (no Times on white), the CSP lets the retry
    # script run, and it reloads the page once Retry-After has passed.
    page = chromium.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(f"{base}/?q=boats")
        font = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "Times" not in font and font.lower() != "serif", font
        assert page.locator("a[href='/']", has_text="Back to the search page").is_visible()
        assert "retrying automatically" in page.locator(".error-retry").inner_text()
        # Reloaded after Retry-After (5 s): wait for that request rather than a fixed time.
        with page.expect_request(f"{base}/?q=boats", timeout=60_000):
            pass
        page.wait_for_load_state()
        assert requests.count(f"{base}/?q=boats") >= 2
        # Only the failed fetches of the reloaded 503 itself may be reported.
        assert all("503" in error for error in errors), errors
        page.screenshot(path=str(SCREENSHOTS / "database-down-503.png"), full_page=True)
    finally:
        page.close()

    _manage(env, "embedded_db", "start")
    deadline = time.monotonic() + 15
    statuses = []
    while time.monotonic() < deadline:
        statuses.append(_get(f"{base}/healthz/ready")[0])
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
