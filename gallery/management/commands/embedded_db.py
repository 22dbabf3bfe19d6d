from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gallery.embedded_db import ensure_server, stop_server


class Command(BaseCommand):
    help = "Show, start or stop the embedded PostgreSQL server (used when DATABASE_URL is unset)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action", choices=["status", "start", "stop"], nargs="?", default="status"
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if settings.PGDATA is None:
            raise CommandError("DATABASE_URL is set: there is no embedded database to manage.")
        pgdata = Path(settings.PGDATA)
        if action == "stop":
            stop_server(pgdata=pgdata)
            self.stdout.write(f"Stopped the embedded PostgreSQL in {pgdata}.")
            return
        socket_dir = ensure_server(
            pgdata=pgdata, shared_buffers=settings.DATABASES["default"]["SHARED_BUFFERS"]
        )
        self.stdout.write(f"Embedded PostgreSQL running: data {pgdata}, socket {socket_dir}.")
