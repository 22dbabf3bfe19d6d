"""A real Celery worker process (prefork, concurrency 1) on Redis database 11 embeds what the
importer queued, survives being killed mid-batch, and fills a new model's vectors before it
switches. The worker is a separate process: it reaches this test's database through
GALLERY_DATABASE_NAME and the test's media folder through MEDIA_ROOT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from gallery.services import artwork_upsert
from search.encoder import get_encoder, reset_encoder
from search.features import active_feature, feature_for
from search.models import Embedding, EmbeddingFailure, Feature
from search.signals import embedding_batch
from tests.conftest import AIC_DIR

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process, self.log = process, log

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and its pool child): no clean-up, no ack."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(
    test_encoder_settings: Path, embed_broker: str, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(*, model: Path | None = None, **env: str) -> Worker:
        log = tmp_path / f"worker-{len(workers)}.log"
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "GALLERY_DATABASE_NAME": connection.settings_dict["NAME"],
            "CELERY_BROKER_URL": embed_broker,
            "MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
            "GALLERY_EMBEDDING_MODEL": str(model or test_encoder_settings),
            "GALLERY_EMBEDDING_FALLBACK": "0",
            "GALLERY_EMBEDDING_DEVICE": "cpu",
            "GALLERY_TORCH_THREADS": "1",
            **env,
        }
        command = [
            sys.executable, "-m", "celery", "-A", "tests.worker_app", "worker",
            "-Q", "embed,default", "--concurrency", "1", "-P", "prefork",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"emb-{uuid.uuid4().hex[:8]}@%h", "--loglevel", "INFO",
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=django_settings.BASE_DIR,
            env=environment,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches the pool child too
        )
        worker = Worker(process, log)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(condition: Callable[[], bool], *, timeout: float, worker: Worker, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(
        f"timed out waiting for {what}; worker log:\n{worker.log.read_text()[-4000:]}"
    )


def aic_import(records: list[dict], count: int) -> list[int]:
    return [
        artwork_upsert(
            source="aic",
            external_id=str(r["id"]),
            metadata={"title": r["title"]},
            image_data=(AIC_DIR / r["image"]).read_bytes(),
        ).artwork.pk
        for r in records[:count]
    ]


def test_worker_embeds_an_imported_sample(start_worker, aic_records) -> None:
    ids = aic_import(aic_records, 6)  # each upsert commits; the signal queues on commit
    worker = start_worker()
    feature = feature_for(get_encoder())
    wait_for(
        lambda: Embedding.objects.filter(feature=feature).count() == 6,
        timeout=180, worker=worker, what="6 embeddings",
    )  # fmt: skip
    assert sorted(Embedding.objects.values_list("artwork_id", flat=True)) == sorted(ids)
    wait_for(lambda: active_feature() == feature, timeout=10, worker=worker, what="activation")
    # The worker's vectors are the ones this process computes for the same images.
    stored = Embedding.objects.get(artwork_id=ids[0]).vector
    expected = get_encoder().encode_images(
        [
            __import__("gallery.images")
            .images.load_image((AIC_DIR / aic_records[0]["image"]).read_bytes())
            .image
        ]
    )[0]
    assert max(abs(a - b) for a, b in zip(stored, expected, strict=True)) < 1e-4


def test_killed_worker_loses_nothing_and_embeds_each_artwork_once(
    start_worker, aic_records, settings
) -> None:
    settings.GALLERY_EMBED_TASK_BATCH = "64"
    with embedding_batch():  # one task holding all 24 ids
        ids = aic_import(aic_records, 24)
    feature = feature_for(get_encoder())
    first = start_worker(GALLERY_EMBED_MODEL_BATCH="1")
    wait_for(
        lambda: Embedding.objects.filter(feature=feature).count() >= 3,
        timeout=180, worker=first, what="the first rows of the batch",
    )  # fmt: skip
    first.kill()
    done_when_killed = Embedding.objects.filter(feature=feature).count()
    assert 3 <= done_when_killed < 24, "the worker must die in the middle of the batch"

    time.sleep(8)  # past the test visibility timeout: the unacknowledged batch is due again
    second = start_worker(GALLERY_EMBED_MODEL_BATCH="4")
    wait_for(
        lambda: Embedding.objects.filter(feature=feature).count() == 24,
        timeout=180, worker=second, what="all 24 embeddings after the restart",
    )  # fmt: skip
    time.sleep(1)  # a duplicate delivery, if any, would write now
    per_artwork = dict(
        Embedding.objects.filter(feature=feature)
        .values_list("artwork_id")
        .annotate(n=Count("id"))
        .values_list("artwork_id", "n")
    )
    assert per_artwork == {pk: 1 for pk in ids}
    assert not EmbeddingFailure.objects.exists()
    log = second.log.read_text()
    assert "search.tasks.embed_artworks" in log and "'skipped': " in log, log[-3000:]


def test_model_switch_through_the_worker(
    start_worker, aic_records, second_test_model_dir: Path, settings
) -> None:
    ids = aic_import(aic_records, 4)
    worker = start_worker()
    old = feature_for(get_encoder())
    wait_for(
        lambda: Embedding.objects.filter(feature=old).count() == 4,
        timeout=180, worker=worker, what="the first model's vectors",
    )  # fmt: skip
    assert active_feature() == old
    worker.stop()

    settings.GALLERY_EMBEDDING_MODEL = str(second_test_model_dir)
    reset_encoder()
    new = feature_for(get_encoder())
    call_command("embed", "--missing")  # queues the 4 under the new feature
    assert active_feature() == old  # nothing computed yet: searches stay on the old vectors
    worker = start_worker(model=second_test_model_dir)
    wait_for(lambda: active_feature() == new, timeout=180, worker=worker, what="the switch")
    assert Embedding.objects.filter(feature=new).count() == len(ids)
    assert Embedding.objects.filter(feature=old).count() == len(ids)
    assert list(Feature.objects.filter(is_active=True)) == [new]
