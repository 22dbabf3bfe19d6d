"""The web process under test: gunicorn on 127.0.0.1 serving the bench database, its API, its
memory, and a bounded loopback load test (N clients for S seconds)."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.gunicorn_process import serve_gunicorn
from bench.stats import children, percentiles, rss_mb


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def workers(self) -> list[int]:
        return children(self.process.pid)

    def memory(self) -> dict[str, float]:
        """RSS of the master and each worker (MB), and the largest worker's peak (VmHWM)."""
        workers = self.workers()
        peak = 0.0
        for pid in workers:
            with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) / 1024)
        return {
            "master_rss_mb": round(rss_mb(self.process.pid), 1),
            "worker_rss_mb": round(sum(rss_mb(p) for p in workers), 1),
            "workers": len(workers),
            "worker_peak_rss_mb": round(peak, 1),
        }


@contextlib.contextmanager
def serve(
    *,
    env: dict[str, str],
    workers: int,
    threads: int,
    log: Path,
    root: Path,
    config: str = "",
) -> Iterator[Server]:
    with serve_gunicorn(
        env={**os.environ, **env},
        log=log,
        root=root,
        workers=workers,
        threads=threads,
        config=config or None,
        options=["--timeout", "300", "--backlog", "256"],
        accept=lambda status: status < 500,
        timeout=120,
    ) as server:
        yield Server(process=server.process, port=server.port, log=log)


def body(
    *,
    text: str = "",
    image: bytes | None = None,
    document_id: int | None = None,
    filters: dict[str, Any] | None = None,
    use_cache: bool = False,
    limit: int = 24,
) -> dict[str, Any]:
    """The API's request body (search/routers.py's schema)."""
    inputs: dict[str, Any] = {}
    if text:
        inputs["text"] = text
    if image is not None:
        inputs["image"] = base64.b64encode(image).decode()
    if document_id is not None:
        inputs["document_id"] = document_id
    out: dict[str, Any] = {"inputs": inputs, "limit": limit, "use_cache": use_cache}
    if filters:
        out["filters"] = filters
    return out


class Client:
    """One keep-alive HTTP/1.1 connection (a browser's), reopened after an error."""

    def __init__(self, port: int, *, keep_alive: bool = True) -> None:
        self.port = port
        self.keep_alive = keep_alive
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        data = json.dumps(payload).encode()
        started = time.perf_counter()
        if self.conn is None or not self.keep_alive:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            self.conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        ms = (time.perf_counter() - started) * 1000
        if not self.keep_alive:
            self.conn.close()
            self.conn = None
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {"raw": raw[:200].decode(errors="replace")}
        return response.status, parsed, ms


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)


def load_test(
    *,
    port: int,
    path: str,
    payloads: list[dict[str, Any]],
    clients: int,
    seconds: float,
) -> dict[str, Any]:
    """`clients` threads, each with its own keep-alive connection, posting payloads in turn
    until `seconds` have passed (a request in flight then is waited for). Any status other than
    200, or a transport error, is an error."""
    result = LoadResult()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(index: int) -> None:
        client = Client(port)
        i = index
        while time.monotonic() < deadline:
            payload = payloads[i % len(payloads)]
            i += clients
            try:
                status, parsed, ms = client.post(path, payload)
                error = None if status == 200 else f"{status}: {str(parsed)[:200]}"
            except Exception as exc:  # transport errors count, whatever they are
                status, ms, error = -1, 0.0, f"{type(exc).__name__}: {exc}"
            with lock:
                result.requests += 1
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if error is None:
                    result.latencies.append(ms)
                else:
                    result.errors += 1
                    if len(result.error_samples) < 5:
                        result.error_samples.append(error)

    started = time.monotonic()
    busy_before, clients_before = busy_cpu_seconds(), time.process_time()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 300)
    wall = time.monotonic() - started
    busy_after, clients_after = busy_cpu_seconds(), time.process_time()
    cpu: dict[str, float] | None = None
    if busy_before is not None and busy_after is not None and result.requests:
        # Where the cores went, per request: the whole machine, and of it these client threads
        # (they share the machine with the server); the rest is the server and its database.
        machine = (busy_after - busy_before) * 1000 / result.requests
        own = (clients_after - clients_before) * 1000 / result.requests
        cpu = {
            "machine": round(machine, 1),
            "clients": round(own, 1),
            "server": round(machine - own, 1),
        }
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": result.requests,
        "errors": result.errors,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "throughput_rps": round(result.requests / wall, 2) if wall else 0.0,
        "latency_ms": percentiles(result.latencies),
        "error_samples": result.error_samples,
        "cpu_ms_per_request": cpu,
    }


def busy_cpu_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot (Linux's /proc/stat), or None."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(value) for value in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
