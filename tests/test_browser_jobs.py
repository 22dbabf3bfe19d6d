"""The curator's imports in Chromium: a ZIP uploaded from the admin runs as a job on a real Celery
worker (a separate process on the test's RabbitMQ virtual host, reaching this test's database and
folders through the environment) while the jobs page follows it live; hostile archives are
refused with their reason; a running job is cancelled from the page."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from gallery.jobs.models import Job
from gallery.models import Artwork, Collection
from tests.fixtures.browser import save_screenshot
from tests.helpers import SAMPLE_PAINTINGS, curators_group, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-curator-password"


def paintings_zip(path: Path, *, copies: int = 1, count: int = 6) -> Path:
    images = sorted((SAMPLE_PAINTINGS / "images").glob("*.jpg"))[:count]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for copy in range(copies):
            for image in images:
                archive.write(image, f"set{copy}/{image.name}")
        archive.writestr("records.csv", f"id,file,title\nfirst,{images[0].name},The first one\n")
    return path


def log_in(page: Any) -> None:
    user = User.objects.create_user("registrar", password=PASSWORD, is_staff=True)
    user.groups.add(curators_group())
    page.goto("/admin/login/?next=/admin/jobs/job/")
    page.fill("#id_username", "registrar")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/jobs/job/")


def start_zip_import(page: Any, archive: Path, collection: Collection) -> None:
    page.goto("/admin/jobs/job/import-zip/")
    page.select_option("#id_collection", str(collection.pk))
    page.set_input_files("#id_archive", str(archive))
    page.click("input[type=submit]")


def test_a_zip_upload_runs_to_done_on_a_worker(
    browser_page: Any, default_worker: Callable[[], Any], tmp_path: Path
) -> None:
    collection = Collection.objects.create(name="sketches")
    default_worker()
    page = browser_page
    log_in(page)
    start_zip_import(page, paintings_zip(tmp_path / "paintings.zip"), collection)
    page.wait_for_url("**/admin/jobs/job/")
    job = Job.objects.get()
    row = page.locator(f"#job-{job.pk}")
    # The page updates itself (htmx polling) until the worker has finished the job.
    row.locator(".job-state", has_text="done").wait_for(timeout=120_000)
    assert row.locator(".count-done").inner_text() == "6"
    assert row.locator(".count-failed").inner_text() == "0"
    assert row.locator(".count-pending").inner_text() == "0"
    assert "registrar" in row.inner_text()
    assert Artwork.objects.filter(collection=collection).count() == 6
    assert Artwork.objects.get(external_id="first").title == "The first one"
    # The admin's pages link no favicon: the browser's own request for one is not the page's.
    assert [error for error in page.js_errors if "/favicon.ico" not in error] == []
    save_screenshot(page, "admin_jobs_zip_done")


def bomb_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.jpg", bytes(64 * 1024 * 1024))
    return path


def dotdot_zip(path: Path) -> Path:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("../../outside.jpg", b"x")
    path.write_bytes(out.getvalue())
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [(bomb_zip, "looks like a ZIP bomb"), (dotdot_zip, "climbs out of the archive with '..'")],
    ids=["bomb", "dotdot"],
)
def test_a_hostile_zip_is_refused(
    browser_page: Any,
    import_dir: Path,
    tmp_path: Path,
    make: Callable[[Path], Path],
    reason: str,
    request: pytest.FixtureRequest,
) -> None:
    collection = Collection.objects.create(name="sketches")
    page = browser_page
    log_in(page)
    start_zip_import(page, make(tmp_path / "hostile.zip"), collection)
    error = page.locator("#id_archive_errors")
    error.wait_for()
    assert "This archive was refused" in error.inner_text()
    assert reason in error.inner_text()
    assert not Job.objects.exists()
    assert not (tmp_path / "outside.jpg").exists()
    save_screenshot(page, f"admin_jobs_refused_{request.node.callspec.id}")


def test_a_running_job_is_cancelled_from_the_page(
    browser_page: Any, default_worker: Callable[[], Any], tmp_path: Path
) -> None:
    collection = Collection.objects.create(name="sketches")
    page = browser_page
    log_in(page)
    # 300 records: the job is still running when the curator cancels it.
    start_zip_import(page, paintings_zip(tmp_path / "big.zip", copies=3, count=100), collection)
    page.wait_for_url("**/admin/jobs/job/")
    job = Job.objects.get()
    default_worker()
    wait_until(lambda: Job.objects.get(pk=job.pk).done > 0, timeout=120, what="the first records")
    page.reload()
    row = page.locator(f"#job-{job.pk}")
    row.get_by_role("button", name="Cancel").click()
    page.wait_for_url("**/admin/jobs/job/")
    row.locator(".job-state", has_text="cancelled").wait_for(timeout=60_000)
    job.refresh_from_db()
    assert job.state == "cancelled" and job.message.startswith("Cancelled after")
    assert 0 < job.done < 300
    assert Artwork.objects.count() == job.done
    save_screenshot(page, "admin_jobs_cancelled")
