"""Small timing helpers shared by the benchmark modules."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def percentiles(ms: Sequence[float]) -> dict[str, float]:
    if not ms:
        return {"n": 0, "p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    a = np.asarray(ms, dtype=np.float64)
    return {
        "n": int(a.size),
        "p50": round(float(np.percentile(a, 50)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "p99": round(float(np.percentile(a, 99)), 2),
        "mean": round(float(a.mean()), 2),
    }


def timed(fn: Callable[[], Any], *, runs: int, warmup: int = 1) -> list[float]:
    """Milliseconds of `runs` calls of fn after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def loadavg() -> float:
    """The 1-minute load average: the machine is shared, every figure is read next to it."""
    return round(os.getloadavg()[0], 2)


def rss_mb(pid: int) -> float:
    """Resident memory of one process, from /proc (Linux)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Direct child processes of pid (gunicorn's workers)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
        except OSError:
            continue
    return out
