"""The Celery app, on RabbitMQ (see CELERY_BROKER_URL in settings). Queue `embed` is for the
model workers (one process per GPU, prefetch 1); `default` takes everything else."""

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
    # A batch is acknowledged when it is done: if its worker dies first, the broker (RabbitMQ)
    # sees the connection close and delivers the batch again to another worker at once.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # A worker that loses its broker connection stops its running batch: the broker has already
    # given the batch to another worker, so finishing it would only duplicate the work.
    worker_cancel_long_running_tasks_on_connection_loss=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)
app.autodiscover_tasks()
