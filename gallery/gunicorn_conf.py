"""gunicorn's settings for the web processes, in one place:
`gunicorn -c python:gallery.gunicorn_conf gallery.wsgi` (docker/compose.yaml, the tests and the
benchmarks that start gunicorn). Options on the command line override these.

The master loads the application before it forks its workers (preload_app): gallery/wsgi.py loads
and warms the query encoder there once, and every worker, including those started later to
replace a recycled one (max_requests), begins with the model already in memory, its pages shared
with the master's copy-on-write instead of one copy per worker. That is safe because the warm-up
closes its database connections before the fork and the encoder's runtimes keep working in a
forked child, on one thread (ONNX Runtime's pool threads do not survive the fork) and except at
the very end (see `worker_exit`); tests/test_deploy.py checks both. Preloading therefore suits
at least as many workers as cores; GALLERY_WEB_PRELOAD=0 makes each worker load its own copy,
with its own threads, instead.

Environment variables (all optional; declared in gallery/config.py):
  GALLERY_WEB_BIND      address to listen on (default 0.0.0.0:8000)
  GALLERY_WEB_WORKERS   worker processes (default 3)
  GALLERY_WEB_THREADS   request threads per worker (default 2)
  GALLERY_WEB_PRELOAD   1: load and warm the model in the master before forking (default 1)
"""

from __future__ import annotations

import os
import sys
from typing import Any

from gallery.config import WebServerConfig

_web = WebServerConfig()
bind = [_web.GALLERY_WEB_BIND]
workers = _web.GALLERY_WEB_WORKERS
threads = _web.GALLERY_WEB_THREADS
preload_app = _web.GALLERY_WEB_PRELOAD
# A search holds a thread for well under a second; a minute means a stuck worker.
timeout = 60
graceful_timeout = 30
# Recycle workers now and then (a slow leak cannot grow without bound); the jitter keeps them
# from restarting together. With preload_app a new worker starts warm.
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
# gunicorn's control socket (gunicornc) is not used, and its default path is one per user: two
# servers on one machine would take it from each other.
control_socket_disable = True


def post_worker_init(worker: Any) -> None:
    """Says when a worker has its signal handlers and takes requests (the tests wait for it)."""
    worker.log.info("Worker ready (pid: %s)", worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """A worker forked from a master that loaded the model inherits the native thread pools'
    state (ONNX Runtime's condition variables, with waiters that live only in the master):
    destroying it during Python's shutdown blocks forever, and the master would wait out
    graceful_timeout and then SIGKILL the worker. The worker has finished its requests by now,
    so it leaves at once, with the exit status it was leaving with."""
    if not server.cfg.preload_app:
        return
    exc = sys.exc_info()[1]
    if exc is None:
        code = 0
    elif isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else 1
    else:
        code = 1
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
