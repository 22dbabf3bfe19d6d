"""Test settings: the project's one settings module, with DEBUG on so no secret is needed."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")

from gallery.settings import *  # noqa: E402,F403

# Imports queue embeddings on commit: in tests that goes nowhere unless a test points the app at
# a broker of its own (a setting, not the environment: Celery lets CELERY_BROKER_URL in the
# environment override whatever the app is later told).
CELERY_BROKER_URL = "memory://"
