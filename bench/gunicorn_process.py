"""gunicorn on a free loopback port, started as production starts it, waited for and stopped: the
one launcher the benchmarks and the tests share."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

PRODUCTION_CONFIG = "python:gallery.gunicorn_conf"


def local_production_env(
    *, database: str, model: Path, media_root: Path, **extra: str
) -> dict[str, str]:
    """This process's environment turned into production settings (DEBUG off) for a server on
    127.0.0.1: a database of its own on the embedded server, a local SigLIP folder and no
    fallback, never the hub. Variables of the caller's own DJANGO_ and GALLERY_WEB_ settings and
    DATABASE_URL are dropped, so the server is configured by these alone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GALLERY_WEB_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="gallery.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="local-production-" + "k" * 40,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        GALLERY_DATABASE_NAME=database,
        GALLERY_EMBEDDING_MODEL=str(model),
        GALLERY_EMBEDDING_FALLBACK="0",
        HF_HUB_OFFLINE="1",
        MEDIA_ROOT=str(media_root),
        **extra,
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GunicornProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self, path: str, *, timeout: float = 5) -> int:
        """The HTTP status of GET `path` (OSError while nothing listens)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        finally:
            conn.close()

    def log_tail(self, characters: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else ""


def start_gunicorn(
    *,
    env: dict[str, str],
    log: Path,
    root: Path,
    workers: int,
    threads: int | None = None,
    config: str | None = PRODUCTION_CONFIG,
    options: Sequence[str] = (),
) -> GunicornProcess:
    """Start `gunicorn gallery.wsgi` (with the production config module unless `config` is
    None; `options` override it) on 127.0.0.1, its output in `log`. Returns at once."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn"]
    command += ["--config", config] if config else []
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    command += ["--threads", str(threads)] if threads else []
    command += [*options, "gallery.wsgi"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    return GunicornProcess(process=process, port=port, log=log)


def wait_answering(
    server: GunicornProcess,
    *,
    timeout: float,
    path: str = "/healthz",
    accept: Callable[[int], bool] = lambda status: status == 200,
) -> None:
    """Poll GET `path` until its status is accepted; a server that exits or never answers
    within `timeout` seconds raises with the end of its log."""
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited ({server.process.returncode}):\n{server.log_tail()}"
            )
        with contextlib.suppress(OSError):
            if accept(server.status(path)):
                return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gunicorn did not answer within {timeout} s:\n{server.log_tail()}")
        time.sleep(0.05)


def stop_gunicorn(server: GunicornProcess, *, timeout: float = 60) -> int | None:
    """SIGTERM (a graceful stop), then SIGKILL after `timeout` seconds; the exit status."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@contextlib.contextmanager
def serve_gunicorn(
    *,
    env: dict[str, str],
    log: Path,
    root: Path,
    workers: int,
    threads: int | None = None,
    config: str | None = PRODUCTION_CONFIG,
    options: Sequence[str] = (),
    ready_path: str = "/healthz",
    accept: Callable[[int], bool] = lambda status: status == 200,
    timeout: float = 300,
) -> Iterator[GunicornProcess]:
    """A started gunicorn whose answer to `ready_path` is accepted (200 by default), stopped on
    leaving."""
    server = start_gunicorn(
        env=env,
        log=log,
        root=root,
        workers=workers,
        threads=threads,
        config=config,
        options=options,
    )
    try:
        wait_answering(server, path=ready_path, accept=accept, timeout=timeout)
        yield server
    finally:
        stop_gunicorn(server)
