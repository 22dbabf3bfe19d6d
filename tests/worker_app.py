"""The project's Celery app as the worker tests run it: the same app and routing, with a short
visibility timeout so that the batch of a killed worker is delivered again within seconds
(production keeps gallery/celery.py's hour)."""

import os

from gallery.celery import app

app.conf.broker_transport_options = {
    "visibility_timeout": int(os.environ.get("GALLERY_TEST_VISIBILITY_TIMEOUT", "8")),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}

__all__ = ["app"]
