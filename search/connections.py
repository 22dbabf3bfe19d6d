"""Database connections for the retriever's helper threads.

A request thread holds a connection from the process's pool while its helper thread runs the
database-only searches. If helpers drew from that same pool, a burst of requests could hold every
pooled connection while each waits for its helper, which waits for a connection: a deadlock until
the pool's timeout. So a helper opens a connection of its own, outside the pool, and closes it
when done; at most SEARCH_HELPER_CONNECTIONS of them are open at once per process. A helper never
waits on anything while it holds one, so the two can never starve each other. Opening it costs a
few milliseconds, spent while the request thread encodes the query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

T = TypeVar("T")

_slots_lock = threading.Lock()
_slots: threading.BoundedSemaphore | None = None


def _helper_slots() -> threading.BoundedSemaphore:
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(max(1, int(settings.SEARCH_HELPER_CONNECTIONS)))
        return _slots


def run_on_helper_connection(function: Callable[..., T], *args: Any) -> T:
    """Run `function` on this (helper) thread with a connection of its own, outside the pool,
    closed when it returns: a helper thread never sees request_finished."""
    wrapper = connections[DEFAULT_DB_ALIAS]  # this thread's own wrapper, not yet connected
    if wrapper.settings_dict["OPTIONS"].get("pool"):
        options = {k: v for k, v in wrapper.settings_dict["OPTIONS"].items() if k != "pool"}
        connections[DEFAULT_DB_ALIAS] = type(wrapper)(
            {**wrapper.settings_dict, "OPTIONS": options}, DEFAULT_DB_ALIAS
        )
    with _helper_slots():
        try:
            return function(*args)
        finally:
            connections.close_all()  # this thread's connections only
