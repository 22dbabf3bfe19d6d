"""Database connection pools across fork().

Django keeps one psycopg pool per process and database alias. A process that forks (a gunicorn
master that preloads the application, a Celery worker starting its pool processes) would hand its
children the pool's open connections, whose sockets would then be shared by two processes, and a
pool whose background threads do not exist in the child. So a pool is closed just before any
fork: the parent opens a new one when it next needs the database, and each child opens its own.
"""

from __future__ import annotations

import os
import sys


def close_pools_before_fork() -> None:
    base = sys.modules.get("django.db.backends.postgresql.base")
    if base is None:  # this process never loaded the backend: no pool to close
        return
    pools = base.DatabaseWrapper._connection_pools
    for alias in list(pools):
        pool = pools.pop(alias, None)
        if pool is not None:
            pool.close(timeout=5)


def register() -> None:
    """Close the pools before every os.fork() of this process and of its children."""
    os.register_at_fork(before=close_pools_before_fork)
