"""A real Celery worker process (prefork, concurrency 1) on the test's RabbitMQ virtual host
(tests/fixtures/broker.py) embeds what the importer queued, survives having its main process
killed mid-batch, and fills a new model's vectors before it switches. The worker is a separate
process: it reaches this test's database through GALLERY_DATABASE_NAME and the test's media
folder through MEDIA_ROOT."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Count
from pytest_django import Settings

from search.encoder import get_encoder, reset_encoder
from search.features import active_feature, feature_for
from search.models import Embedding, EmbeddingFailure, Feature
from search.queueing import embedding_batch
from tests.helpers import (
    PAINTINGS_DIR,
    aic_import,
    spawn_celery_worker,
    wait_until,
    worker_environment,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


RECEIVED = "Task search.tasks.embed_artworks["  # the worker log's line for a delivered batch


def _logged(worker: Worker, text: str) -> bool:
    return text in worker.log.read_text()


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process, self.log = process, log

    def group_alive(self) -> bool:
        """Whether any process of the worker's group (main process, pool child) still runs."""
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        """Stop the main process and its pool child, an orphaned one included."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(20)
        if self.group_alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def start_worker(
    test_encoder_settings: Path, embed_broker: str, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(*, model: Path | None = None, **env: str) -> Worker:
        log = tmp_path / f"worker-{len(workers)}.log"
        environment = worker_environment(
            broker=embed_broker, model=model or test_encoder_settings, **env
        )
        process = spawn_celery_worker(
            queues="embed,default", name="emb", environment=environment, log=log
        )
        worker = Worker(process, log)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(condition: Callable[[], bool], *, timeout: float, worker: Worker, what: str) -> None:
    """Poll until the condition holds; a worker that exited fails the wait at once."""
    wait_until(
        condition,
        timeout=timeout,
        what=what,
        give_up=lambda: worker.process.poll() is not None,
        details=lambda: "worker log:\n" + worker.log.read_text()[-4000:],
    )


def test_worker_embeds_an_imported_sample(
    start_worker: Callable[..., Worker], aic_records: list[dict[str, Any]]
) -> None:
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
            .images.load_image((PAINTINGS_DIR / aic_records[0]["image"]).read_bytes())
            .image
        ]
    )[0]
    assert max(abs(a - b) for a, b in zip(stored, expected, strict=True)) < 1e-4


def test_a_killed_main_process_loses_nothing_and_embeds_each_artwork_once(
    start_worker: Callable[..., Worker], aic_records: list[dict[str, Any]], settings: Settings
) -> None:
    """Two workers; the main process of the one holding the batch is killed outright, as when
    its machine dies. With the settings a user gets (nothing shortened), RabbitMQ sees its
    connection close and gives the batch to the other worker at once. The orphaned pool child
    may still finish its own copy: every artwork still ends with exactly one vector."""
    settings.GALLERY_EMBED_TASK_BATCH = "64"
    workers = [start_worker(GALLERY_EMBED_MODEL_BATCH="1") for _ in range(2)]
    for worker in workers:
        wait_for(functools.partial(_logged, worker, " ready."), timeout=180, worker=worker,
                 what="the worker to be ready")  # fmt: skip
    with embedding_batch():  # one task holding all 24 ids
        ids = aic_import(aic_records, 24)
    feature = feature_for(get_encoder())
    wait_for(
        lambda: Embedding.objects.filter(feature=feature).count() >= 3,
        timeout=180, worker=workers[0], what="the first rows of the batch",
    )  # fmt: skip
    (holder,) = [w for w in workers if RECEIVED in w.log.read_text()]
    (other,) = [w for w in workers if w is not holder]
    os.kill(holder.process.pid, signal.SIGKILL)  # the main process only
    killed_at = time.monotonic()
    done_when_killed = Embedding.objects.filter(feature=feature).count()
    assert 3 <= done_when_killed < 24, "the worker must die in the middle of the batch"

    wait_for(lambda: RECEIVED in other.log.read_text(), timeout=120, worker=other,
             what="the batch delivered again")  # fmt: skip
    redelivered_after = time.monotonic() - killed_at
    wait_for(
        lambda: Embedding.objects.filter(feature=feature).count() == 24,
        timeout=120 - redelivered_after, worker=other, what="all 24 embeddings after the kill",
    )  # fmt: skip
    complete_after = time.monotonic() - killed_at
    wait_for(lambda: "succeeded in" in other.log.read_text(), timeout=120, worker=other,
             what="the redelivered batch to finish")  # fmt: skip
    orphan_alive = holder.group_alive()
    print(
        f"killed with {done_when_killed}/24 embedded; batch delivered again after "
        f"{redelivered_after:.1f} s, all 24 embedded after {complete_after:.1f} s; "
        f"orphaned pool child still running: {orphan_alive}"
    )
    # A late write by the orphaned child, if any, lands before it exits; one still running
    # after the deadline is stopped, so that nothing can write after the count below.
    with contextlib.suppress(AssertionError):
        wait_until(
            lambda: holder.process.poll() is not None and not holder.group_alive(),
            timeout=60,
            what="the orphan to exit",
        )
    holder.stop()
    per_artwork = dict(
        Embedding.objects.filter(feature=feature)
        .values_list("artwork_id")
        .annotate(n=Count("id"))
        .values_list("artwork_id", "n")
    )
    assert per_artwork == {pk: 1 for pk in ids}
    assert not EmbeddingFailure.objects.exists()
    assert "'skipped': " in other.log.read_text()


def test_model_switch_through_the_worker(
    start_worker: Callable[..., Worker],
    aic_records: list[dict[str, Any]],
    second_test_model_dir: Path,
    settings: Settings,
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
    call_command("embed", "--checkpoint", str(second_test_model_dir), "--activate")  # 4 queued
    assert active_feature() == old  # nothing computed yet: searches stay on the old vectors
    worker = start_worker(model=second_test_model_dir)
    wait_for(lambda: active_feature() == new, timeout=180, worker=worker, what="the switch")
    assert Embedding.objects.filter(feature=new).count() == len(ids)
    assert Embedding.objects.filter(feature=old).count() == len(ids)
    assert list(Feature.objects.filter(is_active=True)) == [new]
