"""Test settings: the project's one settings module, with DEBUG on so no secret is needed."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
# No test may reach the Hugging Face hub: a model id that is not a local folder fails at once
# instead of waiting on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gallery.settings import *  # noqa: E402,F403

# Each concurrent run of the suite can keep a test database of its own on the same server.
DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": "test_gallery" + os.environ.get("GALLERY_TEST_DB_SUFFIX", "")
}

# Imports queue embeddings on commit: in tests that goes nowhere unless a test points the app at
# a broker of its own (a setting, not the environment: Celery lets CELERY_BROKER_URL in the
# environment override whatever the app is later told).
CELERY_BROKER_URL = "memory://"
