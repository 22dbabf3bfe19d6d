"""Django's PostgreSQL backend on the embedded server (see gallery/embedded_db/__init__.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db.backends.postgresql import base

from gallery.embedded_db.server import ensure_database, ensure_server


class DatabaseWrapper(base.DatabaseWrapper):
    """Every connection, pooled or not, is made from these parameters: the server is made sure
    of here, once per process, before the first one."""

    def get_connection_params(self) -> dict[str, Any]:
        pgdata = Path(self.settings_dict["PGDATA"])
        # The socket's folder is known once the server runs (it is the data folder unless that
        # path is too long for a socket name).
        self.settings_dict["HOST"] = ensure_server(
            pgdata=pgdata, shared_buffers=self.settings_dict.get("SHARED_BUFFERS", "")
        )
        name = self.settings_dict["NAME"]  # None for Django's connections to no database
        if name:
            ensure_database(pgdata=pgdata, name=name)
        params: dict[str, Any] = super().get_connection_params()
        return params
