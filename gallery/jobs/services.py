"""Creating, cancelling and retrying jobs, and where their input files live.

Queueing a job's task is the caller's part (the admin, above the retrieval layer): these functions
only write the database and the job's folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from gallery.jobs.archives import ArchiveLimits
from gallery.jobs.models import Job
from gallery.models import Collection

# Input files a job may hold, by role; the runner reads them from the job's folder.
INPUT_NAMES = {
    "archive": "archive.zip",
    "objects": "objects.csv",
    "images": "published_images.csv",
}
METADATA_SUFFIXES = (".csv", ".json")
# Spreadsheet programs run a cell that starts with one of these as a formula.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def import_root() -> Path:
    """Outside MEDIA_ROOT on purpose: uploaded archives are never served as media files."""
    configured = settings.GALLERY_IMPORT_DIR
    return Path(configured) if configured else Path(settings.MEDIA_ROOT).parent / "import-uploads"


def archive_limits() -> ArchiveLimits:
    return ArchiveLimits(
        max_entries=settings.GALLERY_IMPORT_MAX_ENTRIES,
        max_unpacked_bytes=settings.GALLERY_IMPORT_MAX_UNPACKED_BYTES,
    )


def job_create(
    *,
    kind: Job.Kind,
    collection: Collection,
    parameters: Mapping[str, Any],
    files: Mapping[str, UploadedFile],
    user: User | AnonymousUser | None,
) -> Job:
    """A queued job whose input `files` (role -> upload: "archive", "metadata", "objects",
    "images") are moved into its own folder. The uploads are on disk already (the admin streams
    them there), so nothing is read into memory."""
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            collection=collection,
            parameters=dict(parameters),
            created_by=user if user is not None and user.is_authenticated else None,
        )
        folder = import_root() / f"job-{job.pk}"
        job.workdir = str(folder)
        job.save(update_fields=["workdir"])
        folder.mkdir(parents=True, exist_ok=True)
        try:
            for role, upload in files.items():
                _store(upload, folder / input_name(role, upload.name or ""))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    return job


def input_name(role: str, original: str) -> str:
    if role == "metadata":
        suffix = Path(original).suffix.lower()
        return "metadata" + (suffix if suffix in METADATA_SUFFIXES else ".csv")
    return INPUT_NAMES[role]


def _store(upload: UploadedFile, target: Path) -> None:
    temporary = getattr(upload, "temporary_file_path", None)
    if temporary is not None:
        shutil.move(temporary(), target)
        return
    with target.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)


def job_cancel(*, job: Job) -> bool:
    """Ask a job to stop. A queued job is cancelled at once; a running one stops after the
    records in hand (the runner checks between small batches). False if it had finished."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_final:
            return False
        job.cancel_requested = True
        fields = ["cancel_requested"]
        if job.state == Job.State.QUEUED:
            job.state, job.finished_at = Job.State.CANCELLED, timezone.now()
            job.message = "Cancelled before it started."
            fields += ["state", "finished_at", "message"]
        job.save(update_fields=fields)
    return True


def job_retry(*, job: Job, user: User | AnonymousUser | None) -> Job:
    """A new queued job over the same input files: only the records that failed, or all of
    them when the job failed as a whole (an unreadable file, a refused archive) or was
    cancelled. ValueError when there is nothing to retry."""
    job = Job.objects.select_related("collection").get(pk=job.pk)
    if not job.is_final:
        raise ValueError("the job has not finished yet")
    failed_ids = list(job.errors.values_list("record_id", flat=True))
    # A job fails as a whole (records that fail leave it "done"), so it is run again whole.
    whole = job.state in {Job.State.FAILED, Job.State.CANCELLED}
    if not whole and not failed_ids:
        raise ValueError("no record failed")
    parameters = {k: v for k, v in job.parameters.items() if k != "only_ids"}
    if not whole:
        parameters["only_ids"] = failed_ids
    with transaction.atomic():
        retry = Job.objects.create(
            kind=job.kind,
            collection=job.collection,
            parameters=parameters,
            retry_of=job,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        folder = import_root() / f"job-{retry.pk}"
        retry.workdir = str(folder)
        retry.save(update_fields=["workdir"])
        folder.mkdir(parents=True, exist_ok=True)
        for source in Path(job.workdir).iterdir():
            if source.is_file():
                _link_or_copy(source, folder / source.name)
    return retry


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def job_delete_files(*, job: Job) -> None:
    """Remove a job's folder (its uploads and extracted images)."""
    if job.workdir:
        shutil.rmtree(job.workdir, ignore_errors=True)


def job_error_rows(*, job: Job) -> Iterator[tuple[str, str]]:
    """(record id, reason) of every record the job could not import, safe to open in a
    spreadsheet (a value that would run as a formula is quoted)."""
    for record_id, reason in job.errors.values_list("record_id", "reason").iterator():
        yield _cell(record_id), _cell(reason)


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def active_jobs() -> QuerySet[Job]:
    return Job.objects.exclude(state__in=Job.FINAL_STATES)
