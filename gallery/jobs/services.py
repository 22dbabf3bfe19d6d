"""Creating, cancelling and retrying jobs, where their input files live, and the bookkeeping of
embedding runs (their batches and counts).

Queueing a job's task is the caller's part (the admin, above the retrieval layer; the retrieval
layer for an embedding run's batches): these functions only write the database and the job's
folder. An embedding run's parameters: `feature_id` and `feature_name` (the feature it fills;
none: each artwork's searched feature), `checkpoint`, `activate` (make the feature the searched
one once complete), `replace` (recompute current vectors), `scope` ("missing": every artwork the
feature lacks when the run starts; "ids": the artworks in `ids`, kept in its batches once
planned).
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
from django.db.models import F, QuerySet
from django.utils import timezone

from gallery.jobs.archives import ArchiveLimits
from gallery.jobs.models import Job, JobBatch, JobError
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
    """Ask a job to stop. A queued job is cancelled at once; a running import stops after the
    records in hand (the runner checks between small batches); a running embedding run is
    cancelled at once: its queued batches find it so and do nothing, the batches being embedded
    finish. False if it had finished."""
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
        elif job.kind == Job.Kind.EMBEDDING:
            job.state, job.finished_at = Job.State.CANCELLED, timezone.now()
            job.message = (
                f"Cancelled after {job.done + job.failed} of {job.total or 0} artwork(s); "
                "batches already being embedded finish."
            )
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
    if job.kind == Job.Kind.EMBEDDING:
        return _embedding_run_retry(job=job, user=user)
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


def _embedding_run_retry(*, job: Job, user: User | AnonymousUser | None) -> Job:
    """The artworks that failed, or the whole run again (only what is still missing, for a
    "missing" run) when it failed as a whole or was cancelled."""
    whole = job.state in {Job.State.FAILED, Job.State.CANCELLED}
    parameters = dict(job.parameters)
    if whole and parameters.get("scope") == "ids" and "ids" not in parameters:
        planned = job.batches.order_by("number").values_list("artwork_ids", flat=True)
        parameters["ids"] = [pk for ids in planned for pk in ids]
    if not whole:
        failed_ids = [int(i) for i in job.errors.values_list("record_id", flat=True)]
        if not failed_ids:
            raise ValueError("no artwork failed")
        parameters.update(scope="ids", ids=failed_ids)
    return Job.objects.create(
        kind=Job.Kind.EMBEDDING,
        parameters=parameters,
        retry_of=job,
        created_by=user if user is not None and user.is_authenticated else None,
    )


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


# Embedding runs ------------------------------------------------------------------------------


def embedding_run_create(
    *,
    feature_id: int | None,
    feature_name: str,
    checkpoint: str,
    activate: bool,
    ids: list[int] | None = None,
    replace: bool = False,
    user: User | AnonymousUser | None,
) -> Job:
    """A queued embedding run: over `ids`, or (None) every artwork the feature lacks when the
    run starts."""
    parameters: dict[str, Any] = {
        "feature_id": feature_id,
        "feature_name": feature_name,
        "checkpoint": checkpoint,
        "activate": activate,
        "replace": replace,
        "scope": "missing" if ids is None else "ids",
    }
    if ids is not None:
        parameters["ids"] = list(ids)
    return Job.objects.create(
        kind=Job.Kind.EMBEDDING,
        parameters=parameters,
        created_by=user if user is not None and user.is_authenticated else None,
    )


def embedding_run_plan(*, job: Job, ids: list[int], batch_size: int) -> list[JobBatch]:
    """Split the run into batches of `batch_size` artworks and mark it running; planned once:
    a run planned before (a start task delivered again) keeps its batches, which are returned.
    Runs in the caller's transaction, under a lock on the job."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        existing = list(locked.batches.all())
        if existing or locked.total is not None:
            return existing
        batches = JobBatch.objects.bulk_create(
            JobBatch(job=locked, number=number, artwork_ids=ids[start : start + batch_size])
            for number, start in enumerate(range(0, len(ids), batch_size))
        )
        # The batches hold the ids from now on: the job row, read by every jobs page, stays small.
        parameters = {k: v for k, v in locked.parameters.items() if k != "ids"}
        Job.objects.filter(pk=locked.pk).update(
            state=Job.State.RUNNING,
            total=len(ids),
            started_at=locked.started_at or timezone.now(),
            parameters=parameters,
        )
    return batches


def embedding_run_extend(*, job: Job, ids: list[int], batch_size: int) -> list[JobBatch]:
    """More batches for a running run (artworks that appeared while it ran), numbered after its
    last one. Call it holding the job's row lock."""
    last = job.batches.order_by("-number").values_list("number", flat=True).first()
    first = 0 if last is None else last + 1
    batches = JobBatch.objects.bulk_create(
        JobBatch(job=job, number=first + n, artwork_ids=ids[start : start + batch_size])
        for n, start in enumerate(range(0, len(ids), batch_size))
    )
    Job.objects.filter(pk=job.pk).update(total=F("total") + len(ids))
    return batches


def embedding_run_accepts_work(*, job_id: int) -> bool:
    """Whether the run's batches should still be embedded (not cancelled, failed or deleted)."""
    return Job.objects.filter(
        pk=job_id, state__in=[Job.State.QUEUED, Job.State.RUNNING], cancel_requested=False
    ).exists()


def embedding_batch_count(*, job_id: int, number: int, failures: Mapping[int, str]) -> bool:
    """Count a finished batch's outcome into its run: every artwork of the batch is done but
    those in `failures` (artwork id -> reason). Once per batch: False when it had been counted
    (a batch delivered again) or does not exist."""
    with transaction.atomic():
        batch = (
            JobBatch.objects.select_for_update()
            .filter(job_id=job_id, number=number, counted=False)
            .first()
        )
        if batch is None:
            return False
        ids = set(batch.artwork_ids)
        failed = {pk: reason for pk, reason in failures.items() if pk in ids}
        batch.counted, batch.done, batch.failed = True, len(ids) - len(failed), len(failed)
        batch.save(update_fields=["counted", "done", "failed"])
        Job.objects.filter(pk=job_id).update(
            done=F("done") + batch.done, failed=F("failed") + batch.failed
        )
        JobError.objects.bulk_create(
            JobError(job_id=job_id, record_id=str(pk), reason=reason)
            for pk, reason in failed.items()
        )
    return True


def embedding_run_fail(*, job_id: int, message: str) -> None:
    Job.objects.filter(pk=job_id).exclude(state__in=Job.FINAL_STATES).update(
        state=Job.State.FAILED, message=message, finished_at=timezone.now()
    )


def unfinished_embedding_runs() -> QuerySet[Job]:
    return Job.objects.filter(kind=Job.Kind.EMBEDDING).exclude(state__in=Job.FINAL_STATES)
