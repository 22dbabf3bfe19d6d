"""The embedding features ("models") in the admin, through Django's test client: per feature its
current vectors, what it still lacks and its failures, and activating a complete feature, checked
with a curator, a staff user without permissions and an anonymous visitor."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from kombu import Connection, Queue
from pytest_django import DjangoCaptureOnCommitCallbacks

from gallery.jobs.models import Job
from gallery.models import Artwork
from gallery.services import artwork_upsert
from search.models import Embedding, EmbeddingFailure, Feature
from search.models.embeddings import DIMENSIONS
from search.queueing import plan_and_queue_run
from tests.fixtures.broker import queued_ids
from tests.helpers import client_for, sample_painting

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:search_feature_changelist"


def vector(artwork: Artwork, feature: Feature) -> Embedding:
    return Embedding.objects.create(
        artwork=artwork,
        feature=feature,
        vector=[1.0] * DIMENSIONS,
        image_sha256=artwork.image_sha256,
    )


@pytest.fixture
def switch() -> tuple[Feature, Feature, list[Artwork]]:
    """An active feature with every vector, and a new one with one of two and one failure."""
    artworks = [
        artwork_upsert(
            source="local",
            external_id=name,
            metadata={"title": name},
            image_data=sample_painting(name).read_bytes(),
        ).artwork
        for name in ("100342.jpg", "100352.jpg")
    ]
    old = Feature.objects.create(name="old@v1", model_name="old", is_active=True)
    new = Feature.objects.create(name="new@v1", model_name="new")
    for artwork in artworks:
        vector(artwork, old)
    vector(artworks[0], new)
    EmbeddingFailure.objects.create(artwork=artworks[1], feature=new, reason="unreadable")
    return old, new, artworks


def activate(client: Client, feature: Feature) -> Any:
    return client.post(
        reverse(CHANGELIST),
        {"action": "activate_if_complete", "_selected_action": [feature.pk]},
        follow=False,
    )


def test_the_overview_counts_each_feature(
    curator: Client, switch: tuple[Feature, Feature, list[Artwork]]
) -> None:
    old, new, _ = switch
    html = curator.get(reverse(CHANGELIST)).content.decode()
    rows = {
        feature.name: html[html.index(f">{feature.name}<") :].split("</tr>")[0]
        for feature in (old, new)
    }
    cells = [[cell.split(">")[-1] for cell in row.split("</td>")[:-1]] for row in rows.values()]
    # model, active, current vectors, missing, failed, activated at
    assert [c[2:5] for c in cells] == [["2", "0", "0"], ["1", "1", "1"]]


def test_a_curator_activates_a_feature_only_when_complete(
    curator: Client, switch: tuple[Feature, Feature, list[Artwork]]
) -> None:
    old, new, artworks = switch
    response = activate(curator, new)
    assert response.status_code == 302
    new.refresh_from_db()
    assert not new.is_active
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == [
        "new@v1 is not complete: 1 artwork(s) still lack a vector under it. The workers "
        "activate it by themselves once the last one is embedded."
    ]
    vector(artworks[1], new)
    activate(curator, new)
    new.refresh_from_db()
    old.refresh_from_db()
    assert new.is_active and not old.is_active


def test_others_cannot_activate_a_feature(switch: tuple[Feature, Feature, list[Artwork]]) -> None:
    _, new, artworks = switch
    vector(artworks[1], new)  # complete: only the permission stands in the way
    bare = User.objects.create_user("intern", password="not-used", is_staff=True)
    for client, status in ((client_for(None), 302), (client_for(bare), 403)):
        assert activate(client, new).status_code == status
        new.refresh_from_db()
        assert not new.is_active


def test_the_jobs_page_follows_each_feature(
    curator: Client, switch: tuple[Feature, Feature, list[Artwork]]
) -> None:
    old, new, _ = switch
    html = curator.get(reverse("admin:jobs_job_changelist")).content.decode()
    row = html[html.index(f'id="feature-{new.pk}"') :].split("</tr>")[0]
    assert 'count-done">1<' in row and 'count-pending">1<' in row and 'count-failed">1<' in row
    # Vectors were written within the last five minutes: the page keeps polling.
    assert 'hx-trigger="every 2s"' in html


def start_tasks(url: str) -> list[int]:
    """The embedding runs whose start task waits on the `default` queue (taken off it)."""
    jobs = []
    with Connection(url, connect_timeout=5) as conn:
        queue = Queue("default").bind(conn.channel())
        while (message := queue.get(no_ack=True)) is not None:
            assert message.headers["task"] == "search.tasks.start_embedding_run"
            args, _kwargs, _embed = json.loads(message.body)
            jobs.append(args[0])
    return jobs


def test_a_curator_queues_the_missing_and_the_failed(
    curator: Client,
    switch: tuple[Feature, Feature, list[Artwork]],
    embed_broker: str,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    _, new, artworks = switch
    for which in ("missing", "failed"):
        url = reverse("admin:jobs_job_queue_embeddings", args=[new.pk, which])
        with django_capture_on_commit_callbacks(execute=True):
            assert curator.post(url).status_code == 302
        # An embedding run (a job), started by its own task: never in the request.
        job = Job.objects.filter(kind=Job.Kind.EMBEDDING).latest("pk")
        assert job.created_by is not None
        assert (job.state, job.created_by.username) == ("queued", "registrar")
        assert job.parameters["feature_id"] == new.pk and not job.parameters["activate"]
        assert start_tasks(embed_broker) == [job.pk]
        assert queued_ids(embed_broker) == []
        plan_and_queue_run(job_id=job.pk)  # what the worker's start task does
        assert queued_ids(embed_broker) == [[artworks[1].pk]], which
        job.refresh_from_db()
        assert (job.state, job.total, job.pending) == ("running", 1, 1)


def test_others_cannot_queue_embeddings(
    switch: tuple[Feature, Feature, list[Artwork]], embed_broker: str
) -> None:
    _, new, _ = switch
    bare = User.objects.create_user("intern", password="not-used", is_staff=True)
    url = reverse("admin:jobs_job_queue_embeddings", args=[new.pk, "missing"])
    for client, status in ((client_for(None), 302), (client_for(bare), 403)):
        assert client.post(url).status_code == status
    assert queued_ids(embed_broker) == []
    assert not Job.objects.exists()


def test_an_unreachable_broker_is_said_not_hidden(
    curator: Client,
    switch: tuple[Feature, Feature, list[Artwork]],
    dead_broker: None,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    _, new, _ = switch
    url = reverse("admin:jobs_job_queue_embeddings", args=[new.pk, "missing"])
    with django_capture_on_commit_callbacks(execute=True):
        response = curator.post(url, follow=True)
    job = Job.objects.get()
    assert job.state == "failed"
    assert job.message.startswith("The run could not be queued (the broker is unreachable")
    response = curator.get(reverse("admin:jobs_job_changelist"))
    assert "The run could not be queued (the broker is unreachable" in response.content.decode()
