"""The embedded PostgreSQL 18 + pgvector server, used when DATABASE_URL is unset.

Settings name it as a database backend (ENGINE "gallery.embedded_db", from `database_settings`),
so loading settings starts nothing: the first connection a process opens starts the server, or
finds it running through its postmaster.pid, and creates the database if it is missing
(base.py). The server keeps running after the process exits so that the web processes, workers
and tests share it; `manage.py embedded_db stop` stops it.
"""

from gallery.embedded_db.server import (
    HANDLE_LIST,
    database_settings,
    ensure_database,
    ensure_server,
    repair_handle_list,
    stop_server,
)

__all__ = [
    "HANDLE_LIST",
    "database_settings",
    "ensure_database",
    "ensure_server",
    "repair_handle_list",
    "stop_server",
]
