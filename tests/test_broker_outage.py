"""The broker goes down during an import and comes back: nothing is lost.

Real RabbitMQ on both sides: the outage is a broker URL where nothing listens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from pytest_django import DjangoCaptureOnCommitCallbacks

from gallery.models import Artwork
from search.queueing import reset_broker_backoff
from tests.fixtures.broker import UNREACHABLE_BROKER_URL, forget_connections, queued_ids
from tests.helpers import aic_import

pytestmark = pytest.mark.django_db


def test_import_commits_while_the_broker_is_down_and_embedding_resumes_after(
    test_encoder_settings: Path,
    aic_records: list[dict[str, Any]],
    embed_broker: str,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    from gallery.celery import app

    app.conf.broker_url = UNREACHABLE_BROKER_URL
    forget_connections(app)
    with django_capture_on_commit_callbacks(execute=True):
        ids = aic_import(aic_records, 3)
    assert Artwork.objects.filter(pk__in=ids).count() == 3  # the import committed
    assert queued_ids(embed_broker) == []  # and nothing reached the real broker

    # The broker is back: `embed --missing` queues what the outage left behind, and the
    # queued batch embeds every one of them.
    app.conf.broker_url = embed_broker
    forget_connections(app)
    reset_broker_backoff()
    call_command("embed", "--missing")
    (batch,) = queued_ids(embed_broker)
    assert sorted(batch) == sorted(ids)
    from search.tasks import embed_artworks

    embed_artworks.run(batch)  # what the worker runs for that message (workers: test_worker.py)
    assert set(
        Artwork.objects.filter(pk__in=ids, embeddings__isnull=False).values_list("pk", flat=True)
    ) == set(ids)
