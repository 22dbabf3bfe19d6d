"""Running an import job: its records are built from the files in its folder and written by the
importers' `run_import` in small batches; after each batch the counts and errors are saved and a
cancel request is honoured.

Safe to run twice and after a worker died: a finished job is left alone, and a job found running
resumes after the records it had already counted (the importers' writes are idempotent, so a
record written but not yet counted is found unchanged).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from gallery.importers.common import ImportFileError, ImportRecord, RecordError, run_import
from gallery.importers.folder import folder_records
from gallery.importers.nga import nga_records
from gallery.jobs.archives import UnsafeArchiveError, extract_zip
from gallery.jobs.models import Job, JobError
from gallery.jobs.services import INPUT_NAMES, METADATA_SUFFIXES, archive_limits

logger = logging.getLogger(__name__)

BATCH = 8  # records between two progress saves (and cancel checks)
NGA_FETCH_WORKERS = 8
EXTRACTED = "files"
_EXTRACTED_MARK = ".extracted"


def run_job(*, job_id: int) -> Job | None:
    """Run (or resume) the job; returns it in its final state, None if it was deleted."""
    job = Job.objects.filter(pk=job_id).select_related("collection").first()
    if job is None or job.is_final:
        return job
    if job.cancel_requested:
        return _finish(job, Job.State.CANCELLED, "Cancelled before it started.")
    Job.objects.filter(pk=job.pk).update(
        state=Job.State.RUNNING, started_at=job.started_at or timezone.now()
    )
    job.refresh_from_db()
    try:
        records = _records(job)
    except (ImportFileError, UnsafeArchiveError) as exc:
        return _finish(job, Job.State.FAILED, f"Nothing was imported: {exc}.")
    only = job.parameters.get("only_ids")
    if only is not None:
        wanted = set(only)
        records = [r for r in records if _record_id(r) in wanted]
    Job.objects.filter(pk=job.pk).update(total=len(records))

    source = str(job.parameters.get("source") or _default_source(job))
    workers = NGA_FETCH_WORKERS if job.kind == Job.Kind.NGA_IMPORT else 1
    position = job.done + job.failed  # resume after what was counted before a restart
    while position < len(records):
        if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
            job.refresh_from_db()
            return _finish(job, Job.State.CANCELLED, _summary(job, cancelled=True))
        batch = records[position : position + BATCH]
        report = run_import(
            source=source, records=batch, collection=job.collection, workers=workers
        )
        with transaction.atomic():
            Job.objects.filter(pk=job.pk).update(
                done=F("done") + report.created + report.updated + report.unchanged,
                failed=F("failed") + report.failed,
                created=F("created") + report.created,
                updated=F("updated") + report.updated,
                unchanged=F("unchanged") + report.unchanged,
            )
            JobError.objects.bulk_create(
                JobError(job=job, record_id=e.record_id, reason=e.reason) for e in report.failures
            )
        position += len(batch)
    job.refresh_from_db()
    return _finish(job, Job.State.DONE, _summary(job, cancelled=False))


def _records(job: Job) -> Sequence[ImportRecord | RecordError]:
    folder = Path(job.workdir)
    if job.kind == Job.Kind.NGA_IMPORT:
        return nga_records(
            objects_csv=folder / INPUT_NAMES["objects"],
            images_csv=folder / INPUT_NAMES["images"],
            iiif_width=int(job.parameters.get("iiif_width", 843)),
            limit=job.parameters.get("limit"),
            classification=job.parameters.get("classification") or None,
        )
    files = folder / EXTRACTED
    if not (files / _EXTRACTED_MARK).is_file():
        # A worker that died mid-extraction left part of it: start over.
        shutil.rmtree(files, ignore_errors=True)
        extract_zip(
            path=folder / INPUT_NAMES["archive"], destination=files, limits=archive_limits()
        )
        (files / _EXTRACTED_MARK).touch()
    return folder_records(directory=files, metadata_file=_metadata_file(folder, files))


def _metadata_file(folder: Path, files: Path) -> Path | None:
    """The metadata file uploaded beside the archive, else the one .csv/.json file at the top
    of the archive (more than one there is ambiguous: refused)."""
    uploaded = [folder / f"metadata{suffix}" for suffix in METADATA_SUFFIXES]
    for path in uploaded:
        if path.is_file():
            return path
    inside = sorted(p for p in files.iterdir() if p.suffix.lower() in METADATA_SUFFIXES)
    if len(inside) > 1:
        names = ", ".join(p.name for p in inside)
        raise ImportFileError(f"the archive holds several metadata files ({names}); keep one")
    return inside[0] if inside else None


def _record_id(record: ImportRecord | RecordError) -> str:
    return record.record_id if isinstance(record, RecordError) else record.external_id


def _default_source(job: Job) -> str:
    return "nga" if job.kind == Job.Kind.NGA_IMPORT else "local"


def _summary(job: Job, *, cancelled: bool) -> str:
    counts = (
        f"{job.created} created, {job.updated} updated, {job.unchanged} unchanged, "
        f"{job.failed} failed"
    )
    processed = f"{job.done + job.failed} record(s): {counts}."
    return f"Cancelled after {processed}" if cancelled else processed


def _finish(job: Job, state: Job.State, message: str) -> Job:
    Job.objects.filter(pk=job.pk).update(state=state, message=message, finished_at=timezone.now())
    job.refresh_from_db()
    logger.info("job %s %s: %s", job.pk, state, message)
    return job
