"""Test settings: the project's one settings module, with DEBUG on so no secret is needed."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")

from gallery.settings import *  # noqa: E402,F403
