"""Models from the admin: "New feature from a checkpoint" (the checkpoint checked offline, the
feature made, its embedding run started by a task, never in the request), embedding runs as jobs
(counted once per batch, cancelled, retried, activating their feature exactly when asked), the
query encoder following the active feature, and the bounded encoder cache. Permissions through
Django's test client; the runs on a real Celery worker process (tests/fixtures/jobs.py's pattern)
or, where only the bookkeeping is tested, by running each queued task in this process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.storage import default_storage
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from kombu import Connection, Queue
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from gallery.images import load_image
from gallery.jobs.models import Job, JobBatch
from gallery.models import Artwork
from search import encoder as encoders
from search.config import default_config
from search.features import active_feature, query_encoder
from search.models import Embedding, Feature, Retriever
from search.pipeline import embed_artworks
from search.queueing import plan_and_queue_run
from tests.helpers import (
    client_for,
    curators_group,
    import_sample_paintings,
    spawn_celery_worker,
    stop_process_group,
    wait_until,
    worker_environment,
)

ADD = "admin:search_feature_add"


def new_feature(client: Client, checkpoint: Path | str, **fields: Any) -> Any:
    data = {"checkpoint": str(checkpoint), "name": "", "activate": "on", **fields}
    if not data["activate"]:
        del data["activate"]
    return client.post(reverse(ADD), data)


def drain(url: str) -> int:
    """Run every task waiting on the test broker in this process, as a worker would, until
    none is left (a start task queues batches). Returns how many ran."""
    from search.tasks import embed_artworks, start_embedding_run

    ran = 0
    with Connection(url, connect_timeout=5) as conn:
        while True:
            message = None
            for name in ("default", "embed"):
                message = Queue(name).bind(conn.channel()).get(no_ack=True)
                if message is not None:
                    break
            if message is None:
                return ran
            args, kwargs, _embed = json.loads(message.body)
            task = {
                "search.tasks.start_embedding_run": start_embedding_run,
                "search.tasks.embed_artworks": embed_artworks,
            }[message.headers["task"]]
            task.run(*args, **kwargs)
            ran += 1


# The form, offline checks and permissions ----------------------------------------------------


@pytest.mark.django_db
def test_the_checkpoint_is_checked_offline(
    curator: Client, test_model_dir: Path, tmp_path: Path
) -> None:
    without_weights = tmp_path / "no-weights"
    shutil.copytree(test_model_dir, without_weights, ignore=shutil.ignore_patterns("*.safetensors"))
    wrong_size = tmp_path / "wide"
    shutil.copytree(test_model_dir, wrong_size)
    config = json.loads((wrong_size / "config.json").read_text())
    config["vision_config"]["hidden_size"] = config["text_config"]["projection_size"] = 1152
    (wrong_size / "config.json").write_text(json.dumps(config))
    cases = {
        str(tmp_path / "absent"): "is neither a folder nor a model in this machine's Hugging Face",
        "google/siglip-so400m-patch14-384": "(nothing is downloaded here)",
        str(without_weights): "has a config but no weights",
        str(wrong_size): "makes 1152-number vectors; this gallery stores 768",
    }
    for checkpoint, reason in cases.items():
        response = new_feature(curator, checkpoint)
        assert response.status_code == 200, checkpoint
        errors = response.context["form"].errors
        assert list(errors) == ["checkpoint"] and reason in errors["checkpoint"][0], errors
        assert 'id="id_checkpoint_errors"' in response.content.decode()
    assert not Feature.objects.exists() and not Job.objects.exists()


@pytest.mark.django_db
def test_a_taken_name_is_refused(curator: Client, other_checkpoint: Path) -> None:
    Feature.objects.create(name="trial@v1", model_name="elsewhere")
    response = new_feature(curator, other_checkpoint, name="trial@v1")
    assert response.context["form"].errors == {"name": ["A feature named trial@v1 exists already."]}
    assert Feature.objects.count() == 1 and not Job.objects.exists()


@pytest.mark.django_db
def test_a_curator_makes_a_feature_and_a_task_starts_its_run(
    curator: Client,
    other_checkpoint: Path,
    embed_broker: str,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    assert curator.get(reverse(ADD)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = new_feature(curator, other_checkpoint)
    assert response.status_code == 302 and response["Location"] == reverse(
        "admin:jobs_job_changelist"
    )
    feature = Feature.objects.get()
    assert (feature.name, feature.model_name, feature.is_active) == (
        "siglip-test-768-s2-t1@v1", str(other_checkpoint), False
    )  # fmt: skip
    job = Job.objects.get()
    assert job.kind == "embedding" and job.state == "queued" and job.total is None
    assert job.created_by is not None and job.created_by.username == "registrar"
    assert job.parameters["feature_id"] == feature.pk and job.parameters["activate"] is True
    # The request only queued the start task; the batches are the worker's to queue.
    with Connection(embed_broker, connect_timeout=5) as conn:
        start = Queue("default").bind(conn.channel()).get(no_ack=True)
        assert start is not None and start.headers["task"] == "search.tasks.start_embedding_run"
        assert Queue("embed").bind(conn.channel()).get(no_ack=True) is None
    page = curator.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert f'id="job-{job.pk}"' in page and "siglip-test-768-s2-t1@v1" in page


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_others_cannot_make_a_feature(other_checkpoint: Path, method: str) -> None:
    visitor = User.objects.create_user("visitor", password="not-used")  # not staff
    visitor.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_feature", "add_job"])
    )
    bare = User.objects.create_user("intern", password="not-used", is_staff=True)
    url = reverse(ADD)
    data = {"checkpoint": str(other_checkpoint), "activate": "on"}
    refusals = [(client_for(None), 302), (client_for(visitor), 302), (client_for(bare), 403)]
    for client, status in refusals:
        response = getattr(client, method)(url, data)
        assert response.status_code == status
        if status == 302:
            assert response["Location"].startswith(reverse("admin:login"))
    assert not Feature.objects.exists() and not Job.objects.exists()


# Runs, in this process -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_counts_each_batch_once_and_activates_only_when_complete(
    curator: Client,
    test_encoder_settings: Path,
    other_checkpoint: Path,
    embed_broker: str,
    settings: Settings,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    settings.GALLERY_EMBED_TASK_BATCH = "2"
    ids = import_sample_paintings(5)
    embed_artworks(ids=ids)  # the first feature, active once complete
    first = active_feature()
    broken = Artwork.objects.get(pk=ids[2])
    original = default_storage.open(broken.image.name or "").read()
    with default_storage.open(broken.image.name or "", "wb") as fh:
        fh.write(b"not an image any more")

    with django_capture_on_commit_callbacks(execute=True):
        new_feature(curator, other_checkpoint)
    feature = Feature.objects.get(is_active=False)
    assert drain(embed_broker) == 1 + 3  # the start task, then three batches of 2, 2 and 1
    job = Job.objects.get()
    assert (job.state, job.total, job.done, job.failed) == ("done", 5, 4, 1)
    assert "was not activated: 1 artwork(s) still lack a vector" in job.message
    assert active_feature() == first  # incomplete: searches keep the first feature

    # A batch delivered again (a worker died before acknowledging it) is not counted twice.
    batch = JobBatch.objects.get(job=job, number=0)
    from search.tasks import embed_artworks as task

    task.run(batch.artwork_ids, feature_id=feature.pk, job_id=job.pk, batch=0)
    job.refresh_from_db()
    assert (job.done, job.failed) == (4, 1)

    # The CSV names the artwork; "Retry the failed ones" runs it alone, and the retry, asked to
    # activate like its run, switches searches once the image is readable again.
    errors = curator.get(reverse("admin:jobs_job_errors", args=[job.pk]))
    assert isinstance(errors, StreamingHttpResponse)
    csv = errors.getvalue()
    assert f"{ids[2]},".encode() in csv and b"The image cannot be decoded" in csv
    with default_storage.open(broken.image.name or "", "wb") as fh:
        fh.write(original)
    with django_capture_on_commit_callbacks(execute=True):
        assert curator.post(reverse("admin:jobs_job_retry", args=[job.pk])).status_code == 302
    retry = Job.objects.get(retry_of=job)
    assert retry.parameters["ids"] == [ids[2]]
    assert drain(embed_broker) == 2
    assert "ids" not in Job.objects.get(pk=retry.pk).parameters  # its batches hold them now
    retry.refresh_from_db()
    assert (retry.state, retry.total, retry.done, retry.failed) == ("done", 1, 1, 0)
    assert active_feature() == feature
    assert Embedding.objects.filter(feature=feature).count() == 5
    # Web processes follow: the query encoder is now the other checkpoint's.
    encoder, searched = query_encoder()
    assert searched == feature and encoder.model_name == str(other_checkpoint)
    assert encoder.backend == "onnx"  # its ONNX export, made for this checkpoint


@pytest.mark.django_db
def test_a_run_not_asked_to_activate_leaves_searches_alone(
    curator: Client,
    test_encoder_settings: Path,
    other_checkpoint: Path,
    embed_broker: str,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    ids = import_sample_paintings(3)
    embed_artworks(ids=ids)
    first = active_feature()
    with django_capture_on_commit_callbacks(execute=True):
        new_feature(curator, other_checkpoint, name="seed2-trial", activate="")
    drain(embed_broker)
    job = Job.objects.get()
    assert (job.state, job.done, job.message) == ("done", 3, "3 artwork(s) embedded, 0 failed.")
    trial = Feature.objects.get(name="seed2-trial")
    assert Embedding.objects.filter(feature=trial).count() == 3
    assert active_feature() == first and not trial.is_active


@pytest.mark.django_db
def test_a_cancelled_run_queues_batches_that_do_nothing(
    curator: Client,
    test_encoder_settings: Path,
    other_checkpoint: Path,
    embed_broker: str,
    settings: Settings,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    settings.GALLERY_EMBED_TASK_BATCH = "1"
    ids = import_sample_paintings(4)
    embed_artworks(ids=ids)
    with django_capture_on_commit_callbacks(execute=True):
        new_feature(curator, other_checkpoint)
    job = Job.objects.get()
    plan_and_queue_run(job_id=job.pk)  # four batches queued (and a start task, drained below)
    assert curator.post(reverse("admin:jobs_job_cancel", args=[job.pk])).status_code == 302
    drain(embed_broker)
    job.refresh_from_db()
    assert (job.state, job.done, job.failed) == ("cancelled", 0, 0)
    assert not Embedding.objects.filter(feature__is_active=False).exists()


def test_the_encoder_cache_is_bounded(
    test_encoder_settings: Path,
    second_test_model_dir: Path,
    other_checkpoint: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(encoders, "MAX_LOADED_CHECKPOINTS", 2)
    for checkpoint in (test_encoder_settings, second_test_model_dir, other_checkpoint):
        encoders.get_encoder(str(checkpoint))
    assert encoders.loaded_checkpoints() == [str(second_test_model_dir), str(other_checkpoint)]
    encoders.get_encoder(str(second_test_model_dir))  # used again: now the most recent
    encoders.get_encoder(str(test_encoder_settings))
    assert encoders.loaded_checkpoints() == [str(second_test_model_dir), str(test_encoder_settings)]


# Runs on a real worker -----------------------------------------------------------------------


@pytest.fixture
def embed_worker(
    embed_broker: str, test_encoder_settings: Path, tmp_path: Path
) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    """Starts a worker on `queues`, configured with the FIRST test model: it embeds a run with
    the checkpoint of the run's feature, whatever its own GALLERY_EMBEDDING_MODEL says."""
    started: list[subprocess.Popen[bytes]] = []

    def start(queues: str = "embed,default", **env: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"worker-{len(started)}.log"
        environment = worker_environment(broker=embed_broker, model=test_encoder_settings, **env)
        process = spawn_celery_worker(
            queues=queues, name="models", environment=environment, log=log
        )
        started.append(process)
        return process, log

    yield start
    for process in started:
        stop_process_group(process)


def finished(job: Job) -> bool:
    job.refresh_from_db()
    return job.is_final


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_builds_a_feature_from_another_checkpoint_and_searches_switch(
    test_encoder_settings: Path,
    other_checkpoint: Path,
    embed_worker: Callable[..., tuple[subprocess.Popen[bytes], Path]],
) -> None:
    Retriever.objects.get_or_create(name="default", defaults={"config": default_config()})
    ids = import_sample_paintings(6)
    embed_artworks(ids=ids)
    first = active_feature()
    user = User.objects.create_user("registrar", password="not-used", is_staff=True)
    user.groups.add(curators_group())
    curator = client_for(user)
    worker, log = embed_worker()

    assert new_feature(curator, other_checkpoint).status_code == 302  # commits: task queued
    job = Job.objects.get()
    wait_until(
        lambda: finished(job), timeout=180, what="the run to finish",
        give_up=lambda: worker.poll() is not None, details=lambda: log.read_text()[-4000:],
    )  # fmt: skip
    assert (job.state, job.total, job.done, job.failed) == ("done", 6, 6, 0), job.message
    feature = Feature.objects.get(model_name=str(other_checkpoint))
    assert active_feature() == feature
    assert not Feature.objects.get(pk=first.pk).is_active

    # The worker's vectors are the other checkpoint's, not its configured model's.
    other = encoders.get_encoder(str(other_checkpoint))
    artwork = Artwork.objects.get(pk=ids[0])
    with artwork.image.open("rb") as fh:
        expected = other.encode_images([load_image(fh.read()).image])[0]
    stored = np.asarray(Embedding.objects.get(feature=feature, artwork=artwork).vector)
    np.testing.assert_allclose(stored, expected, atol=2e-3)

    # A search now encodes its text with the active feature's checkpoint and ranks its vectors.
    text = "a portrait of a woman"
    query = other.encode_texts([text])[0].astype(np.float16).astype(np.float64)  # as halfvec
    rows = Embedding.objects.filter(feature=feature).values_list("artwork_id", "vector")
    scores = {pk: float(np.asarray(v, dtype=np.float64) @ query) for pk, v in rows}
    response = client_for(None).post(
        "/api/retrievers/default/execute",
        data={"inputs": {"text": text}},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    found = [r["artwork_id"] for r in response.json()["results"]]
    assert sorted(found) == sorted(ids)
    # Rank by rank, the new feature's scores in order (near-ties may swap).
    best = sorted(scores.values(), reverse=True)
    assert np.allclose([scores[pk] for pk in found], best, atol=2e-3)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_run_survives_its_worker_killed_mid_run(
    test_encoder_settings: Path,
    other_checkpoint: Path,
    embed_worker: Callable[..., tuple[subprocess.Popen[bytes], Path]],
) -> None:
    """The run's state is in the database: its worker (main process and pool child) killed
    outright mid-run, RabbitMQ gives the unacknowledged batch to a new worker, and every artwork
    is counted exactly once."""
    ids = import_sample_paintings(30)
    embed_artworks(ids=ids)
    user = User.objects.create_user("registrar", password="not-used", is_staff=True)
    user.groups.add(curators_group())
    one_by_one = {"GALLERY_EMBED_TASK_BATCH": "1", "GALLERY_EMBED_MODEL_BATCH": "1"}
    first, log = embed_worker(**one_by_one)
    assert new_feature(client_for(user), other_checkpoint).status_code == 302
    job = Job.objects.get()
    wait_until(
        lambda: Job.objects.get(pk=job.pk).done >= 3, timeout=180, what="the first batches",
        give_up=lambda: first.poll() is not None, details=lambda: log.read_text()[-4000:],
    )  # fmt: skip
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    killed_at = Job.objects.get(pk=job.pk)
    assert killed_at.state == "running" and killed_at.done < len(ids)

    second, log = embed_worker(**one_by_one)
    wait_until(
        lambda: finished(job), timeout=180, what="the run to finish on the second worker",
        give_up=lambda: second.poll() is not None, details=lambda: log.read_text()[-4000:],
    )  # fmt: skip
    assert (job.state, job.total, job.done, job.failed) == ("done", 30, 30, 0), job.message
    feature = Feature.objects.get(model_name=str(other_checkpoint))
    assert Embedding.objects.filter(feature=feature).count() == 30
    assert active_feature() == feature
