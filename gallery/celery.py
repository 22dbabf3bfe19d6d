"""The Celery app. Queue `embed` is for the model workers (one process per GPU, prefetch 1);
`default` takes everything else."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")

app = Celery("gallery")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[Queue("default"), Queue("embed")],
    task_default_queue="default",
    task_routes={"search.tasks.embed_artworks": {"queue": "embed"}},
    task_acks_late=True,  # a worker killed mid-task leaves its message to be delivered again
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)
app.autodiscover_tasks()
