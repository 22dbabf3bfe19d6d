"""Vectors to and from PostgreSQL as pgvector-python's own types, on Django's connection.

Embeddings are stored as halfvec (search/models/embeddings.py). Raw SQL (the kNN, the workers'
bulk insert) sends a query vector as `HalfVector` and reads stored ones back as `HalfVector`,
through the adapters pgvector.psycopg registers, in binary: no text format written by hand.
Registering needs the type's oid, one catalog lookup per physical connection (a pooled one
keeps its adapters between requests); `vector_cursor` does it the first time it is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from django.db import connection
from django.db.backends.utils import CursorWrapper
from pgvector import HalfVector
from pgvector.psycopg.halfvec import register_halfvec_info
from psycopg import Connection
from psycopg.types import TypeInfo

__all__ = ["HalfVector", "as_halfvec", "as_float32", "vector_cursor"]


@contextmanager
def vector_cursor() -> Iterator[CursorWrapper]:
    """A cursor of this thread's connection that sends and reads halfvec as `HalfVector`."""
    connection.ensure_connection()
    _register(connection.connection)  # before the cursor, which copies the connection's adapters
    with connection.cursor() as cursor:
        yield cursor


def as_halfvec(vector: np.ndarray) -> HalfVector:
    """A query or stored vector as the halfvec parameter it is compared as."""
    return HalfVector(np.asarray(vector, dtype=np.float32).ravel())


def as_float32(stored: HalfVector) -> np.ndarray:
    """A stored vector as float32: exactly the float16 values the index compares."""
    return stored.to_numpy().astype(np.float32)


def _register(raw: Connection[object]) -> None:
    if raw.adapters.types.get("halfvec") is not None:
        return
    info = TypeInfo.fetch(raw, "halfvec")
    if info is None:
        raise RuntimeError("The database has no halfvec type: pgvector 0.7 or later is needed.")
    register_halfvec_info(raw, info)
