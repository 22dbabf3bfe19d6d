"""Models from the admin in Chromium, on a real Celery worker (a separate process on the test's
RabbitMQ virtual host, configured with the first test model): a curator builds a new feature from
another checkpoint with "activate when complete", watches its embedding run reach "done" on the
jobs page (htmx polling), and searches then use the new feature; another run is cancelled from
the jobs page and its queued batches do nothing."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User

from gallery.jobs.models import Job
from search import encoder as encoders
from search.config import default_config
from search.features import active_feature
from search.models import Embedding, Feature, Retriever
from search.pipeline import embed_artworks
from search.retriever import normalise_text
from tests.fixtures.browser import save_screenshot
from tests.helpers import (
    curators_group,
    import_sample_paintings,
    spawn_celery_worker,
    stop_process_group,
    wait_until,
    worker_environment,
)

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-curator-password"


@pytest.fixture
def paintings(test_encoder_settings: Path, settings: Any) -> list[int]:
    """Sample paintings embedded under the first feature (active), served by the live server."""
    settings.GALLERY_SERVE_MEDIA = True
    Retriever.objects.get_or_create(name="default", defaults={"config": default_config()})
    ids = import_sample_paintings(40)  # embedded below, in this process
    embed_artworks(ids=ids)
    return ids


@pytest.fixture
def worker(
    embed_broker: str, test_encoder_settings: Path, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(queues: str = "embed,default", **env: str) -> subprocess.Popen[bytes]:
        environment = worker_environment(broker=embed_broker, model=test_encoder_settings, **env)
        log = tmp_path / f"worker-{len(started)}.log"
        process = spawn_celery_worker(
            queues=queues, name="models", environment=environment, log=log
        )
        started.append(process)
        return process

    yield start
    for process in started:
        stop_process_group(process)


def log_in(page: Any, next_url: str) -> None:
    user = User.objects.create_user("registrar", password=PASSWORD, is_staff=True)
    user.groups.add(curators_group())
    page.goto(f"/admin/login/?next={next_url}")
    page.fill("#id_username", "registrar")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{next_url}")


def start_feature(page: Any, checkpoint: Path, *, name: str = "", activate: bool = True) -> None:
    page.goto("/admin/jobs/job/")
    page.get_by_role("link", name="New feature from a checkpoint").click()
    page.wait_for_url("**/admin/search/feature/add/")
    page.fill("#id_checkpoint", str(checkpoint))
    page.fill("#id_name", name)
    page.set_checked("#id_activate", activate)
    page.get_by_role("button", name="Make the feature and start embedding").click()
    page.wait_for_url("**/admin/jobs/job/")


def test_a_curator_builds_a_feature_from_another_checkpoint_and_searches_switch(
    browser_page: Any,
    paintings: list[int],
    other_checkpoint: Path,
    worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    first = active_feature()
    page = browser_page
    log_in(page, "/admin/jobs/job/")

    # A checkpoint that is not on this machine is refused on the form, saying why.
    page.goto("/admin/search/feature/add/")
    page.fill("#id_checkpoint", "google/siglip-so400m-patch14-384")
    page.get_by_role("button", name="Make the feature and start embedding").click()
    error = page.locator("#id_checkpoint_errors")
    assert "nothing is downloaded here" in error.inner_text()
    save_screenshot(page, "admin_models_refused_checkpoint")

    start_feature(page, other_checkpoint)
    job = Job.objects.get()
    row = page.locator(f"#job-{job.pk}")
    assert "siglip-test-768-s2-t1@v1" in row.locator(".job-target").inner_text()
    assert "activated when complete" in row.locator(".job-target").inner_text()
    process = worker()
    # The page polls by itself until the worker has filled the feature.
    row.locator(".job-state", has_text="done").wait_for(timeout=180_000)
    assert process.poll() is None
    assert row.locator(".count-done").inner_text() == str(len(paintings))
    assert row.locator(".count-failed").inner_text() == "0"
    assert row.locator(".count-pending").inner_text() == "0"
    assert "registrar" in row.inner_text()
    assert "is now the active feature" in row.locator(".job-message").inner_text()
    feature = Feature.objects.get(model_name=str(other_checkpoint))
    assert active_feature() == feature and not Feature.objects.get(pk=first.pk).is_active
    assert [e for e in page.js_errors if "/favicon.ico" not in e] == []
    save_screenshot(page, "admin_models_feature_built")

    page.goto("/admin/search/feature/")
    new_row = page.locator("#result_list tbody tr", has_text=feature.name)
    assert new_row.locator(".field-is_active img").get_attribute("alt") == "True"
    assert new_row.locator(".field-missing").inner_text() == "0"
    save_screenshot(page, "admin_models_features")

    # A search now runs with the new feature: the other checkpoint's text vector, ranked
    # against the new feature's vectors (the first feature's ranking differs).
    text = "a portrait of a woman"

    def scores(of: Feature) -> dict[int, float]:
        encoder = encoders.get_encoder(of.model_name)
        query = encoder.encode_texts([normalise_text(text)])[0]
        query = query.astype(np.float16).astype(np.float64)  # sent to pgvector as halfvec
        rows = Embedding.objects.filter(feature=of).values_list("artwork_id", "vector")
        return {pk: float(np.asarray(v, dtype=np.float64) @ query) for pk, v in rows}

    def ranked_by(found: dict[int, float], shown: list[int]) -> bool:
        """Rank by rank, the scores of the best matches (near-ties may swap)."""
        best = sorted(found.values(), reverse=True)[: len(shown)]
        return bool(np.allclose([found[pk] for pk in shown], best, atol=2e-3))

    page.goto("/?q=" + text.replace(" ", "+"))
    cards = page.locator("#result-list .card")
    cards.first.wait_for()
    shown = [int(i) for i in cards.evaluate_all("cs => cs.map(c => c.dataset.artworkId)")]
    assert len(shown) == 24
    assert ranked_by(scores(feature), shown)
    assert not ranked_by(scores(first), shown)  # what the first feature would have shown
    save_screenshot(page, "admin_models_search_with_new_feature")


def test_a_curator_cancels_an_embedding_run(
    browser_page: Any,
    paintings: list[int],
    other_checkpoint: Path,
    worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    page = browser_page
    log_in(page, "/admin/jobs/job/")
    # One painting per batch, and only the start task's worker at first: the batches wait.
    starter = worker("default", GALLERY_EMBED_TASK_BATCH="1")
    start_feature(page, other_checkpoint)
    job = Job.objects.get()
    wait_until(
        lambda: Job.objects.get(pk=job.pk).total == len(paintings), timeout=120,
        what="the run's batches to be queued", give_up=lambda: starter.poll() is not None,
    )  # fmt: skip
    embedder = worker("embed", GALLERY_EMBED_MODEL_BATCH="1")
    wait_until(
        lambda: Job.objects.get(pk=job.pk).done >= 1, timeout=120,
        what="the first batches", give_up=lambda: embedder.poll() is not None,
    )  # fmt: skip
    page.reload()
    row = page.locator(f"#job-{job.pk}")
    row.get_by_role("button", name="Cancel").click()
    page.wait_for_url("**/admin/jobs/job/")
    row.locator(".job-state", has_text="cancelled").wait_for(timeout=30_000)
    save_screenshot(page, "admin_models_run_cancelled")

    # The embedding worker goes through the rest of the queue without embedding anything.
    feature = Feature.objects.get(model_name=str(other_checkpoint))
    settled = {"count": -1}

    def stopped() -> bool:
        count = Embedding.objects.filter(feature=feature).count()
        still, settled["count"] = count == settled["count"], count
        return still and Job.objects.get(pk=job.pk).done == count

    wait_until(stopped, timeout=60, interval=2.0, what="the queue to drain")
    job.refresh_from_db()
    assert job.state == "cancelled" and job.message.startswith("Cancelled after")
    assert 1 <= job.done < len(paintings)
    assert Embedding.objects.filter(feature=feature).count() == job.done
    assert not feature.is_active and active_feature() != feature
    # "Run again" embeds what the cancelled run left, and then activates as asked.
    page.reload()
    page.locator(f"#job-{job.pk}").get_by_role("button", name="Run again").click()
    page.wait_for_url("**/admin/jobs/job/")
    again = Job.objects.get(retry_of=job)
    page.locator(f"#job-{again.pk} .job-state", has_text="done").wait_for(timeout=120_000)
    again.refresh_from_db()
    assert again.done == len(paintings) - job.done
    assert active_feature() == Feature.objects.get(pk=feature.pk)
    save_screenshot(page, "admin_models_run_again")
