"""Helpers shared by test modules: where the paintings are, small image makers, importing
paintings, and polling with a deadline. Fixtures live in `tests/fixtures/`; test modules import
helpers from here, never from each other."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent

# The 100 paintings bundled with the project: always present, enough for most tests.
SAMPLE_PAINTINGS = ROOT / "sample" / "aic"
# The 267 shared paintings (full-size images): a few tests name paintings only they hold.
ALL_PAINTINGS = Path(
    os.environ.get("GALLERY_SAMPLE_PAINTINGS") or ROOT.parent / "shared" / "data" / "aic-paintings"
)
HAVE_ALL_PAINTINGS = (ALL_PAINTINGS / "artworks.json").is_file()
# What tests that need "some real paintings" read: the shared set when present, else the sample.
PAINTINGS_DIR = ALL_PAINTINGS if HAVE_ALL_PAINTINGS else SAMPLE_PAINTINGS

_ABSENT = (
    f"names paintings of the 267 shared AIC paintings, absent from {ALL_PAINTINGS} "
    "(set GALLERY_SAMPLE_PAINTINGS to their folder)"
)
needs_all_paintings = pytest.mark.skipif(not HAVE_ALL_PAINTINGS, reason=_ABSENT)


def require_all_paintings() -> None:
    """In a fixture: skip the tests that use it when the shared paintings are absent."""
    if not HAVE_ALL_PAINTINGS:
        pytest.skip(_ABSENT)


def sample_painting(name: str) -> Path:
    """A painting of the bundled sample by file name (always present)."""
    return SAMPLE_PAINTINGS / "images" / name


def painting(name: str) -> Path:
    """A painting of the shared set by file name; tests that call it carry `needs_all_paintings`."""
    return ALL_PAINTINGS / "images" / name


def painting_records() -> list[dict[str, Any]]:
    """The records (artworks.json) of PAINTINGS_DIR, in file order."""
    records: list[dict[str, Any]] = json.loads((PAINTINGS_DIR / "artworks.json").read_text())
    return records


def one_painting() -> Path:
    """One real painting: 866 of the shared set, else the sample's first one."""
    if HAVE_ALL_PAINTINGS:
        return painting("866.jpg")
    return PAINTINGS_DIR / painting_records()[0]["image"]


def jpeg_bytes(
    size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG")
    return out.getvalue()


def at(root: Path, name: str | None) -> Path:
    """The file a FileField name points at under MEDIA_ROOT."""
    assert name, "the field holds no file"
    return Path(root) / name


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, *, bit_depth: int, color_type: int, rows: bytes) -> bytes:
    """A PNG written by hand, so that it can claim any size or bit depth."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def aic_import(records: list[dict[str, Any]], count: int, *, offset: int = 0) -> list[int]:
    """Import records[offset:offset + count] of PAINTINGS_DIR through the service (each upsert
    commits, so its embedding is queued on commit); returns the artwork ids in order."""
    from gallery.services import artwork_upsert

    return [
        artwork_upsert(
            source="aic",
            external_id=str(record["id"]),
            metadata={"title": record["title"], "artist": record["artist"]},
            image_data=(PAINTINGS_DIR / record["image"]).read_bytes(),
        ).artwork.pk
        for record in records[offset : offset + count]
    ]


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    give_up: Callable[[], bool] = lambda: False,
    details: Callable[[], str] = lambda: "",
) -> T:
    """Poll `condition` until it returns something truthy (returned), failing with `what` and
    `details()` after `timeout` seconds, or at once when `give_up()` says waiting is pointless
    (a process that died)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if give_up() or time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}\n{details()}")
        time.sleep(interval)


def rrf_by_hand(*rankings: list[int], k: int = 60) -> list[int]:
    """RRF written out independently of search/fusion.py, to check the retriever's fused order:
    higher score, then the better best rank, then the smaller id."""
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking in rankings:
        for rank, artwork_id in enumerate(ranking, start=1):
            scores[artwork_id] = scores.get(artwork_id, 0.0) + 1 / (k + rank)
            best[artwork_id] = min(best.get(artwork_id, rank), rank)
    return sorted(scores, key=lambda a: (-round(scores[a], 12), best[a], a))


def curators_group() -> Any:
    """The "Curators" group as its migration makes it (rebuilt when a transactional test has
    flushed the tables)."""
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group

    migration = importlib.import_module("gallery.jobs.migrations.0002_curators_group")
    migration.create_curators(apps, None)
    return Group.objects.get(name="Curators")


def client_for(user: Any) -> Any:
    """A test client logged in as `user`, or anonymous for None."""
    from django.test import Client

    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def worker_environment(*, broker: str, model: Path, **env: str) -> dict[str, str]:
    """A test worker's environment: this test's database, media and broker, `model` on the CPU
    with no fallback to the offline model, and `env` on top."""
    from django.conf import settings
    from django.db import connection

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "GALLERY_DATABASE_NAME": str(connection.settings_dict["NAME"]),
        "CELERY_BROKER_URL": broker,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "GALLERY_EMBEDDING_MODEL": str(model),
        "GALLERY_EMBEDDING_FALLBACK": "0",
        "GALLERY_EMBEDDING_DEVICE": "cpu",
        "GALLERY_TORCH_THREADS": "1",
        **env,
    }


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group, SIGKILL if it has not exited 20 s later."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def spawn_celery_worker(
    *, queues: str, name: str, environment: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """A real Celery worker process (prefork, concurrency 1) on `queues`, reaching this test's
    database and broker through `environment`, its output in `log`. It gets a process group of
    its own, so that killpg reaches its pool child too."""
    from django.conf import settings

    command = [
        sys.executable, "-m", "celery", "-A", "gallery", "worker",
        "-Q", queues, "--concurrency", "1", "-P", "prefork",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"{name}-{uuid.uuid4().hex[:8]}@%h", "--loglevel", "INFO",
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def import_sample_paintings(count: int) -> list[int]:
    """The first `count` bundled sample paintings, imported without queueing their embedding
    (the test decides)."""
    from gallery.services import artwork_images_changed, artwork_upsert

    receivers = artwork_images_changed.receivers[:]
    artwork_images_changed.receivers = []
    try:
        names = sorted((SAMPLE_PAINTINGS / "images").glob("*.jpg"))[:count]
        return [
            artwork_upsert(
                source="local",
                external_id=path.stem,
                metadata={"title": f"Painting {path.stem}"},
                image_data=path.read_bytes(),
            ).artwork.pk
            for path in names
        ]
    finally:
        artwork_images_changed.receivers = receivers
        artwork_images_changed.sender_receivers_cache.clear()


def import_and_embed_aic(records: list[dict[str, Any]], aic_ids: list[int]) -> list[int]:
    """The shared AIC paintings with these ids, imported and embedded in this process."""
    from gallery.services import artwork_upsert
    from search.pipeline import embed_artworks

    by_id = {record["id"]: record for record in records}
    ids = [
        artwork_upsert(
            source="aic",
            external_id=str(aic_id),
            metadata={"title": f"t{aic_id}"},
            image_data=(ALL_PAINTINGS / by_id[aic_id]["image"]).read_bytes(),
        ).artwork.pk
        for aic_id in aic_ids
    ]
    assert embed_artworks(ids=ids).embedded == len(ids)
    return ids
