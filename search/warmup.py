"""Load and warm the query encoder when a web process starts, and say whether it is ready.

A process that serves searches loads its query encoder lazily on first use: the first visitor
would pay the model load (seconds) and the first forward passes (slower than the rest: kernels
pick their code paths, tokenizers and graphs initialise). `warm_query_encoder` pays both before
the process takes traffic (gallery/wsgi.py calls it for gunicorn workers and `runserver`), through
the public entry points only (`query_encoder()`, `get_encoder(for_queries=True)` and each tower's
encode method), so it works for whichever runtime serves queries.

An encoder that cannot load never stops the process: searches fall back to keywords as before,
and readiness (`query_encoder_state`) stays false, retrying in the background, until a load
succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from django.db import DatabaseError, connection, connections

logger = logging.getLogger(__name__)

WARM_TEXT = "a painting"
WARM_IMAGE_SIZE = (224, 224)


@dataclass(frozen=True)
class EncoderState:
    loaded: bool = False
    feature: str = ""  # the feature whose vectors the warmed encoder computes
    load_ms: float = 0.0  # load and first encodes, in this process
    error: str = ""  # why the last attempt failed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_state = EncoderState()
_attempted = False  # this process warms its encoder (web processes); others never start one
_state_lock = threading.Lock()
_warming = threading.Lock()  # held while a warm-up runs: one at a time per process


def warm_query_encoder() -> EncoderState:
    """Load the encoder searches will use, run each tower once, and record the outcome.
    Never raises: a failure is logged and kept in the returned state."""
    global _state, _attempted
    _attempted = True
    with _warming:
        if _state.loaded:
            return _state
        started = time.perf_counter()
        try:
            encoder = _load_query_encoder()
            _encode_once(encoder)
        except Exception as exc:  # any failure must leave the process serving
            logger.warning("Query encoder not warmed (searches fall back to keywords): %s", exc)
            state = EncoderState(error=f"{type(exc).__name__}: {exc}")
        else:
            load_ms = round((time.perf_counter() - started) * 1000, 1)
            state = EncoderState(loaded=True, feature=encoder.feature_name, load_ms=load_ms)
            logger.info("Query encoder %r warm in %.0f ms", encoder, load_ms)
        finally:
            _close_own_connections()
        with _state_lock:
            _state = state
        return state


def query_encoder_state(*, retry_in_background: bool = True) -> EncoderState:
    """The warm-up's outcome so far. In a process that warms its encoder (gallery/wsgi.py), while
    the encoder is not loaded a warm-up is started in a background thread (unless one is
    running), so a process whose model appeared later, or whose database was down at start,
    becomes ready without a restart. The encoder's own retry delay
    (GALLERY_ENCODER_RETRY_SECONDS) keeps a missing model from being retried on every call."""
    state = _state
    if not state.loaded and _attempted and retry_in_background and not _warming.locked():
        thread = threading.Thread(target=warm_query_encoder, name="encoder-warmup", daemon=True)
        thread.start()
    return state


def warm_up_running() -> bool:
    """Whether a warm-up is running in this process now (in the background, say)."""
    return _warming.locked()


def forget_warm_state() -> None:
    """Back to "not loaded" (tests, after search.encoder.reset_encoder())."""
    global _state, _attempted
    with _state_lock:
        _state = EncoderState()
        _attempted = False


def _load_query_encoder() -> Any:
    from search.encoder import get_encoder
    from search.features import query_encoder

    try:
        encoder, _feature = query_encoder()  # the active feature's encoder, as searches get it
    except DatabaseError as exc:
        # No database yet (down, or not migrated): load the configured model, which is the
        # active one except during a model switch.
        logger.info("Database unavailable while warming (%s); loading the configured model", exc)
        _discard_broken_connection()
        encoder = get_encoder(for_queries=True)
    return encoder


def _encode_once(encoder: Any) -> None:
    from PIL import Image

    encoder.encode_texts([WARM_TEXT])
    encoder.encode_images([Image.new("RGB", WARM_IMAGE_SIZE, (128, 128, 128))])


def _discard_broken_connection() -> None:
    usable = connection.connection is None or connection.is_usable()
    if not connection.in_atomic_block and not usable:
        connection.close()


def _close_own_connections() -> None:
    """Close this thread's connections: the warm-up runs on the main thread before requests
    (whose connection no request would reuse) or on a helper thread that never sees
    request_finished; in a gunicorn master that preloads the app, a connection left open would
    be shared by every forked worker."""
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:
            conn.close()
