"""An import job on a real Celery worker survives the worker's death: the worker (main process
and pool child) is killed outright mid-job, RabbitMQ delivers the unacknowledged task again to a
new worker, and the job resumes after the records it had counted, ending with every record
counted once."""

from __future__ import annotations

import os
import signal
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from gallery.cockpit.tasks import queue_job
from gallery.jobs.models import Job
from gallery.jobs.services import job_create
from gallery.models import Artwork, Collection
from tests.helpers import SAMPLE_PAINTINGS, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

RECORDS = 100


def test_a_job_resumes_on_a_new_worker_after_its_worker_is_killed(
    default_worker: Callable[[], subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    archive = tmp_path / "paintings.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for image in sorted((SAMPLE_PAINTINGS / "images").glob("*.jpg"))[:RECORDS]:
            out.write(image, image.name)
    job = job_create(
        kind=Job.Kind.ZIP_IMPORT,
        collection=Collection.objects.create(name="sketches"),
        parameters={"source": "local"},
        files={"archive": SimpleUploadedFile("paintings.zip", archive.read_bytes())},
        user=None,
    )
    queue_job(job=job)  # no transaction open: queued at once

    first = default_worker()
    wait_until(
        lambda: Job.objects.get(pk=job.pk).done >= 16,
        timeout=120,
        what="the first records",
        give_up=lambda: first.poll() is not None,
    )
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    killed_at = Job.objects.get(pk=job.pk)
    assert killed_at.state == "running" and killed_at.done < RECORDS

    second = default_worker()
    wait_until(
        lambda: Job.objects.get(pk=job.pk).is_final,
        timeout=180,
        what="the job to finish on the second worker",
        give_up=lambda: second.poll() is not None,
    )
    finished = Job.objects.get(pk=job.pk)
    assert (finished.state, finished.total, finished.done, finished.failed) == (
        "done", RECORDS, RECORDS, 0
    )  # fmt: skip
    assert finished.created + finished.unchanged == RECORDS
    assert Artwork.objects.filter(collection=finished.collection).count() == RECORDS
