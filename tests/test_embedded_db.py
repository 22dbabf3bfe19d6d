"""The embedded PostgreSQL starts on a process's first connection, never when settings load, and
starts even when the package's process list was left spoilt by a process killed mid-write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gallery.embedded_db import HANDLE_LIST, repair_handle_list

ROOT = Path(__file__).resolve().parent.parent

# Settings load, then the first query: the server must not exist before it, and must answer it.
FIRST_QUERY = """
import os, pathlib, django
django.setup()
pgdata = pathlib.Path(os.environ["GALLERY_PGDATA"])
assert not (pgdata / "postmaster.pid").exists(), "the server started before any connection"
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT current_database()")
    print(cursor.fetchone()[0])
"""


@pytest.mark.parametrize(
    ("content", "repaired"),
    [("", True), ("[12, 3", True), ('{"a": 1}', True), ("[12, 34]", False), ("[]", False)],
)
def test_repair_handle_list(tmp_path: Path, content: str, repaired: bool) -> None:
    (tmp_path / HANDLE_LIST).write_text(content)
    assert repair_handle_list(pgdata=tmp_path) is repaired
    assert (tmp_path / HANDLE_LIST).read_text() == ("[]" if repaired else content)
    assert [path.name for path in tmp_path.iterdir()] == [HANDLE_LIST]


def test_repair_handle_list_without_a_list(tmp_path: Path) -> None:
    assert repair_handle_list(pgdata=tmp_path) is False
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of processes using an embedded server of their own, stopped at the end."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="gallery.settings",
        DJANGO_DEBUG="1",
        GALLERY_PGDATA=str(tmp_path / "pg"),
        GALLERY_DATABASE_NAME="lazy_start",
    )
    try:
        yield env
    finally:
        if (tmp_path / "pg" / "postmaster.pid").exists():
            _python(env, "-m", "django", "embedded_db", "stop")


def _python(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_first_connection_starts_the_server_even_after_a_killed_writer(
    own_server: dict[str, str],
) -> None:
    pgdata = Path(own_server["GALLERY_PGDATA"])
    # Started by the first connection, which also creates the database.
    assert _python(own_server, "-c", FIRST_QUERY).split() == ["lazy_start"]
    assert (pgdata / "postmaster.pid").exists()

    # A process killed while the package rewrote its list leaves it empty: the next process
    # repairs it and connects.
    (pgdata / HANDLE_LIST).write_text("")
    connect = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "connection.ensure_connection(); print('connected')\n"
    )
    assert _python(own_server, "-c", connect).split() == ["connected"]
    assert isinstance(json.loads((pgdata / HANDLE_LIST).read_text()), list)


SHARED_BUFFERS = """
import django
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT current_setting('shared_buffers'), pg_postmaster_start_time()")
    print(*cursor.fetchone(), sep="|")
"""


def test_the_server_runs_with_the_configured_shared_buffers(own_server: dict[str, str]) -> None:
    # The default: PostgreSQL's own 128 MB would not hold a 120,000-artwork index.
    size, started = _python(own_server, "-c", SHARED_BUFFERS).strip().split("|")
    assert size == "2GB"

    # Another size: set, and the server restarted once to take it.
    own_server["GALLERY_PG_SHARED_BUFFERS"] = "256MB"
    size, restarted = _python(own_server, "-c", SHARED_BUFFERS).strip().split("|")
    assert size == "256MB" and restarted != started
    size, again = _python(own_server, "-c", SHARED_BUFFERS).strip().split("|")
    assert (size, again) == ("256MB", restarted)  # already so: no restart


def test_shared_buffers_the_machine_cannot_give_leave_the_server_running(
    own_server: dict[str, str],
) -> None:
    size, started = _python(own_server, "-c", SHARED_BUFFERS).strip().split("|")
    assert size == "2GB"

    too_much = {**own_server, "GALLERY_PG_SHARED_BUFFERS": "4TB"}  # in PostgreSQL's range
    result = subprocess.run(
        [sys.executable, "-c", SHARED_BUFFERS],
        cwd=ROOT,
        env=too_much,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode != 0
    assert "could not start with 4TB of shared buffers" in result.stderr
    assert "it runs with 2GB as before" in result.stderr

    # The server runs again with the size it had, and keeps it.
    size, again = _python(own_server, "-c", SHARED_BUFFERS).strip().split("|")
    assert size == "2GB" and again != started


def test_a_shared_buffers_that_is_no_size_is_refused(tmp_path: Path) -> None:
    from gallery.embedded_db import database_settings

    with pytest.raises(ValueError, match="GALLERY_PG_SHARED_BUFFERS"):
        database_settings(pgdata=tmp_path, name="gallery", shared_buffers="2GB; DROP")
