"""Imports started from the admin: archive checks, the job runner (real paintings, real
PostgreSQL), and every admin write of the jobs page checked with a curator, a staff user without
permissions and an anonymous visitor (Django's test client; the browser tests are in
tests/test_browser_jobs.py)."""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from gallery.jobs.archives import ArchiveLimits, UnsafeArchiveError, check_zip, extract_zip
from gallery.jobs.models import Job, JobError
from gallery.jobs.runner import run_job
from gallery.jobs.services import job_cancel, job_create, job_retry
from gallery.models import Artwork, Collection
from tests.helpers import curators_group, sample_painting

LIMITS = ArchiveLimits(max_entries=100, max_unpacked_bytes=50 * 1024 * 1024)
PAINTINGS = ["100342.jpg", "100352.jpg", "100356.jpg"]


# Archives -----------------------------------------------------------------------------------


def zip_bytes(entries: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0
            archive.writestr(info, target)
    return out.getvalue()


def zip_bomb() -> bytes:
    """One entry of 64 MiB of zeros: about 64 KiB compressed."""
    return zip_bytes({"zeros.jpg": bytes(64 * 1024 * 1024)})


def paintings_zip(*, extra: dict[str, bytes] | None = None) -> bytes:
    entries = {f"paintings/{name}": sample_painting(name).read_bytes() for name in PAINTINGS}
    return zip_bytes({**entries, **(extra or {})})


def write(tmp_path: Path, data: bytes, name: str = "archive.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (zip_bomb(), "looks like a ZIP bomb"),
        (zip_bytes({"../evil.jpg": b"x"}), "climbs out of the archive"),
        (zip_bytes({"a/../../evil.jpg": b"x"}), "climbs out of the archive"),
        (zip_bytes({"/etc/evil.jpg": b"x"}), "is an absolute path"),
        (zip_bytes({"C:/evil.jpg": b"x"}), "is an absolute path"),
        (zip_bytes({}, links={"link.jpg": "/etc/passwd"}), "is a link"),
        (zip_bytes({f"{i}.jpg": b"x" for i in range(101)}), "101 entries; at most 100"),
        (b"not a zip at all", "not a readable ZIP archive"),
    ],
    ids=["bomb", "dotdot", "nested-dotdot", "absolute", "drive", "symlink", "entries", "not-zip"],
)
def test_hostile_archives_are_refused_before_extraction(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(UnsafeArchiveError, match=reason):
        check_zip(path=path, limits=LIMITS)
    with pytest.raises(UnsafeArchiveError, match=reason):
        extract_zip(path=path, destination=tmp_path / "out", limits=LIMITS)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "evil.jpg").exists()


def test_total_unpacked_size_is_capped(tmp_path: Path) -> None:
    # Random-looking bytes do not compress: each entry passes the ratio rule, the sum does not.
    blob = sample_painting(PAINTINGS[0]).read_bytes()
    path = write(tmp_path, zip_bytes({f"{i}.jpg": blob for i in range(4)}))
    small = ArchiveLimits(max_entries=100, max_unpacked_bytes=3 * len(blob))
    with pytest.raises(UnsafeArchiveError, match="expand to more than"):
        check_zip(path=path, limits=small)


def test_a_plain_archive_is_extracted(tmp_path: Path) -> None:
    path = write(tmp_path, paintings_zip())
    assert extract_zip(path=path, destination=tmp_path / "out", limits=LIMITS) == 3
    for name in PAINTINGS:
        extracted = (tmp_path / "out" / "paintings" / name).read_bytes()
        assert extracted == sample_painting(name).read_bytes()


# The runner ---------------------------------------------------------------------------------


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def zip_job(
    collection: Collection, data: bytes, *, metadata: tuple[str, bytes] | None = None
) -> Job:
    files = {"archive": upload("paintings.zip", data)}
    if metadata is not None:
        files["metadata"] = upload(*metadata)
    return job_create(
        kind=Job.Kind.ZIP_IMPORT,
        collection=collection,
        parameters={"source": "local"},
        files=files,
        user=None,
    )


def ran(job: Job) -> Job:
    """The job after running it in this process (the worker's code path, without the broker)."""
    finished = run_job(job_id=job.pk)
    assert finished is not None
    return finished


@pytest.fixture
def collection(db: None) -> Collection:
    return Collection.objects.create(name="prints")


METADATA = (
    b"id,file,title,artist,date\n"
    b"p1,100342.jpg,First painting,Someone,1890\n"
    b"p2,100352.jpg,Second painting,Someone else,c. 1650\n"
)


def test_a_zip_job_imports_into_its_collection_and_reports_bad_records(
    collection: Collection, settings: Settings, tmp_path: Path
) -> None:
    settings.GALLERY_IMPORT_DIR = tmp_path / "imports"
    data = paintings_zip(extra={"broken.jpg": b"this is not an image"})
    job = zip_job(collection, data, metadata=("records.csv", METADATA))
    job = ran(job)
    assert (job.state, job.total, job.done, job.failed, job.created) == ("done", 4, 3, 1, 3)
    artworks = Artwork.objects.filter(collection=collection).order_by("external_id")
    assert [(a.external_id, a.title, a.begin_year) for a in artworks] == [
        ("p1", "First painting", 1890),
        ("p2", "Second painting", 1650),
        ("paintings/100356", "100356", None),
    ]
    assert [(e.record_id, e.reason) for e in job.errors.all()] == [
        ("broken", "The file is not an image we can read (JPEG, PNG, WebP, TIFF, BMP or GIF).")
    ]
    # Run twice (a redelivered task): nothing changes.
    again = run_job(job_id=job.pk)
    assert again is not None and (again.done, again.failed) == (3, 1)
    assert Artwork.objects.count() == 3


def test_a_restarted_job_resumes_after_the_counted_records(
    collection: Collection, settings: Settings, tmp_path: Path
) -> None:
    settings.GALLERY_IMPORT_DIR = tmp_path / "imports"
    job = zip_job(collection, paintings_zip())
    # As a worker that died after counting two records leaves it.
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, done=2, created=2)
    job = ran(job)
    assert (job.state, job.done, job.created) == ("done", 3, 3)
    # Only the third record was written by this run.
    assert list(Artwork.objects.values_list("external_id", flat=True)) == ["paintings/100356"]


def test_a_cancelled_job_writes_nothing(
    collection: Collection, settings: Settings, tmp_path: Path
) -> None:
    settings.GALLERY_IMPORT_DIR = tmp_path / "imports"
    job = zip_job(collection, paintings_zip())
    assert job_cancel(job=job)
    job.refresh_from_db()
    assert job.state == "cancelled"
    assert ran(job).state == "cancelled"
    assert not Artwork.objects.exists()
    assert not job_cancel(job=job)  # finished: nothing to cancel


def test_retry_runs_only_the_failed_records(
    collection: Collection, settings: Settings, tmp_path: Path
) -> None:
    settings.GALLERY_IMPORT_DIR = tmp_path / "imports"
    job = zip_job(collection, paintings_zip(extra={"broken.jpg": b"not an image"}))
    run_job(job_id=job.pk)
    # The curator fixes the image in place; the retry reads the same archive, so replace it.
    fixed = paintings_zip(extra={"broken.jpg": sample_painting("102098.jpg").read_bytes()})
    (Path(job.workdir) / "archive.zip").unlink()
    (Path(job.workdir) / "archive.zip").write_bytes(fixed)
    retry = job_retry(job=job, user=None)
    assert retry.parameters["only_ids"] == ["broken"]
    retry = ran(retry)
    assert (retry.state, retry.total, retry.done, retry.failed) == ("done", 1, 1, 0)
    assert Artwork.objects.filter(external_id="broken").exists()


def test_a_refused_archive_fails_the_job_with_its_reason(
    collection: Collection, settings: Settings, tmp_path: Path
) -> None:
    settings.GALLERY_IMPORT_DIR = tmp_path / "imports"
    job = ran(zip_job(collection, zip_bytes({"../x.jpg": b"x"})))
    assert job.state == "failed"
    assert "climbs out of the archive" in job.message
    assert not Artwork.objects.exists()


# The admin, with each kind of user -----------------------------------------------------------


@pytest.fixture
def bare_staff(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_user("intern", password="not-used", is_staff=True))
    return client


@pytest.fixture
def anonymous(db: None) -> Client:
    return Client()


@pytest.fixture
def import_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.GALLERY_IMPORT_DIR = tmp_path / "imports"
    return settings.GALLERY_IMPORT_DIR


def post_zip(client: Client, collection: Collection, data: bytes, **extra: object):
    return client.post(
        reverse("admin:jobs_job_import_zip"),
        {"collection": collection.pk, "source": "local", "archive": upload("a.zip", data), **extra},
    )


def test_the_curators_group_manages_the_collection_not_people(db: None) -> None:
    codenames = set(curators_group().permissions.values_list("content_type__app_label", "codename"))
    for needed in [
        ("gallery", "add_artwork"),
        ("gallery", "change_collection"),
        ("jobs", "add_job"),
        ("jobs", "change_job"),
        ("search", "change_retriever"),
        ("search", "change_feature"),
    ]:
        assert needed in codenames
    assert not {label for label, _ in codenames} & {"auth", "admin", "sessions", "contenttypes"}


def test_a_curator_cannot_touch_users_or_permissions(curator: Client) -> None:
    for name in ("admin:auth_user_changelist", "admin:auth_user_add", "admin:auth_group_add"):
        assert curator.get(reverse(name)).status_code == 403, name
    response = curator.post(
        reverse("admin:auth_user_add"),
        {"username": "mallory", "password1": "x-Secret-123", "password2": "x-Secret-123"},
    )
    assert response.status_code == 403
    assert not User.objects.filter(username="mallory").exists()
    assert not Permission.objects.filter(user__username="registrar").exists()


def test_a_curator_starts_a_zip_import(
    curator: Client,
    collection: Collection,
    import_dir: Path,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_zip(curator, collection, paintings_zip())
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get()
    assert job.created_by is not None
    assert (job.kind, job.state, job.collection, job.created_by.username) == (
        "zip_import",
        "queued",
        collection,
        "registrar",
    )
    assert (Path(job.workdir) / "archive.zip").read_bytes() == paintings_zip()
    assert Path(job.workdir).is_relative_to(import_dir)
    assert len(callbacks) == 1  # the task is queued once the job is committed, not run here
    assert not Artwork.objects.exists()
    page = curator.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert f'id="job-{job.pk}"' in page and 'hx-trigger="every 2s"' in page


@pytest.mark.parametrize(
    ("data", "reason"),
    [(zip_bomb(), "looks like a ZIP bomb"), (zip_bytes({"../x.jpg": b"x"}), "climbs out")],
    ids=["bomb", "dotdot"],
)
def test_a_hostile_zip_is_refused_with_its_reason(
    curator: Client, collection: Collection, import_dir: Path, data: bytes, reason: str
) -> None:
    response = post_zip(curator, collection, data)
    assert response.status_code == 200
    assert "This archive was refused" in response.content.decode()
    assert reason in response.content.decode()
    assert not Job.objects.exists()
    assert not import_dir.exists() or not any(import_dir.iterdir())


def test_an_upload_over_the_cap_is_refused(
    curator: Client, collection: Collection, import_dir: Path, settings: Settings
) -> None:
    settings.GALLERY_IMPORT_MAX_UPLOAD_BYTES = 100_000
    response = post_zip(curator, collection, paintings_zip())
    assert response.status_code == 200
    assert "The upload is larger than 97.7" in response.content.decode()
    assert not Job.objects.exists()


def test_the_default_upload_cap_takes_a_real_archive(settings: Settings) -> None:
    assert settings.GALLERY_IMPORT_MAX_UPLOAD_BYTES == 1024**3


def test_a_curator_starts_an_nga_import(
    curator: Client, collection: Collection, import_dir: Path
) -> None:
    response = curator.post(
        reverse("admin:jobs_job_import_nga"),
        {
            "collection": collection.pk,
            "objects": upload("objects.csv", b"objectid,title\n1,A\n"),
            "images": upload("published_images.csv", b"uuid,depictstmsobjectid\n"),
            "iiif_width": "600",
            "limit": "5",
            "classification": "Painting",
        },
    )
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.parameters == {
        "source": "nga", "iiif_width": 600, "limit": 5, "classification": "Painting"
    }  # fmt: skip
    assert sorted(p.name for p in Path(job.workdir).iterdir()) == [
        "objects.csv",
        "published_images.csv",
    ]


def test_the_nga_form_names_its_wrong_fields(curator: Client, collection: Collection) -> None:
    response = curator.post(
        reverse("admin:jobs_job_import_nga"),
        {"collection": collection.pk, "iiif_width": "0", "limit": "-1"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    for field in ("objects", "images", "iiif_width", "limit"):
        assert f'id="id_{field}_errors"' in html, field
    assert not Job.objects.exists()


@pytest.fixture
def finished_job(collection: Collection, import_dir: Path) -> Job:
    job = zip_job(collection, paintings_zip())
    Job.objects.filter(pk=job.pk).update(state=Job.State.DONE, total=3, done=2, failed=1)
    JobError.objects.create(job=job, record_id="=cmd|calc", reason="not an image")
    job.refresh_from_db()
    return job


def test_cancel_retry_and_errors_for_a_curator(
    curator: Client, finished_job: Job, collection: Collection
) -> None:
    running = zip_job(collection, paintings_zip())
    assert curator.post(reverse("admin:jobs_job_cancel", args=[running.pk])).status_code == 302
    running.refresh_from_db()
    assert running.state == "cancelled"

    assert curator.post(reverse("admin:jobs_job_retry", args=[finished_job.pk])).status_code == 302
    retry = Job.objects.get(retry_of=finished_job)
    assert retry.parameters["only_ids"] == ["=cmd|calc"]

    response = curator.get(reverse("admin:jobs_job_errors", args=[finished_job.pk]))
    assert response["Content-Type"].startswith("text/csv")
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows == [["record_id", "reason"], ["'=cmd|calc", "not an image"]]


WRITES = [
    ("admin:jobs_job_import_zip", False),
    ("admin:jobs_job_import_nga", False),
    ("admin:jobs_job_cancel", True),
    ("admin:jobs_job_retry", True),
]


@pytest.mark.parametrize(("name", "takes_job"), WRITES)
def test_anonymous_visitors_cannot_write(
    anonymous: Client, finished_job: Job, collection: Collection, name: str, takes_job: bool
) -> None:
    url = reverse(name, args=[finished_job.pk] if takes_job else [])
    before = Job.objects.count()
    response = anonymous.post(url, {"collection": collection.pk, "archive": upload("a.zip", b"")})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert Job.objects.count() == before
    finished_job.refresh_from_db()
    assert finished_job.state == "done"


@pytest.mark.parametrize(("name", "takes_job"), WRITES)
def test_staff_without_permissions_cannot_write(
    bare_staff: Client, finished_job: Job, collection: Collection, name: str, takes_job: bool
) -> None:
    url = reverse(name, args=[finished_job.pk] if takes_job else [])
    before = Job.objects.count()
    response = bare_staff.post(url, {"collection": collection.pk})
    assert response.status_code == 403
    assert Job.objects.count() == before


@pytest.mark.parametrize(
    "name", ["admin:jobs_job_changelist", "admin:jobs_job_table", "admin:jobs_job_errors"]
)
def test_reads_need_a_login_and_the_view_permission(
    anonymous: Client, bare_staff: Client, curator: Client, finished_job: Job, name: str
) -> None:
    url = reverse(name, args=[finished_job.pk] if name.endswith("errors") else [])
    assert anonymous.get(url).status_code == 302
    assert bare_staff.get(url).status_code == 403
    assert curator.get(url).status_code == 200


def test_a_job_the_broker_cannot_take_says_so(
    curator: Client,
    collection: Collection,
    import_dir: Path,
    dead_broker: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert post_zip(curator, collection, paintings_zip()).status_code == 302
    job = Job.objects.get()
    assert job.state == "failed"
    assert job.message.startswith("The job could not be queued (the broker is unreachable")
    assert curator.post(reverse("admin:jobs_job_retry", args=[job.pk])).status_code == 302
    assert Job.objects.get(retry_of=job).parameters == {"source": "local"}  # the whole job again


@pytest.fixture
def iiif_server() -> Iterator[tuple[str, list[str]]]:
    """A local stand-in for the NGA's IIIF server (no internet here): any path answers with a
    real painting; the paths asked for are recorded."""
    asked: list[str] = []
    body = sample_painting(PAINTINGS[0]).read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


def test_an_nga_job_imports_with_the_chosen_width_limit_and_classification(
    collection: Collection, import_dir: Path, iiif_server: tuple[str, list[str]]
) -> None:
    base, asked = iiif_server
    objects = (
        "objectid,title,classification\n1,A,Painting\n2,B,Drawing\n3,C,painting\n4,D,Painting\n"
    )
    images = "uuid,iiifurl,viewtype,sequence,depictstmsobjectid,width\n" + "".join(
        f"u{n},{base}/iiif/u{n},primary,0,{n},4000\n" for n in range(1, 5)
    )
    job = job_create(
        kind=Job.Kind.NGA_IMPORT,
        collection=collection,
        parameters={"source": "nga", "iiif_width": 600, "limit": 2, "classification": "painting"},
        files={
            "objects": upload("objects.csv", objects.encode()),
            "images": upload("published_images.csv", images.encode()),
        },
        user=None,
    )
    job = ran(job)
    assert (job.state, job.total, job.done, job.failed) == ("done", 2, 2, 0)
    assert sorted(Artwork.objects.values_list("source", "external_id", "title")) == [
        ("nga", "1", "A"),
        ("nga", "3", "C"),
    ]
    assert sorted(asked) == ["/iiif/u1/full/600,/0/default.jpg", "/iiif/u3/full/600,/0/default.jpg"]
