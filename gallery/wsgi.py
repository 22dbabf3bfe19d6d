"""The WSGI application for gunicorn and `manage.py runserver` (which both import it before they
serve), so the query encoder is loaded and warm before the first request: see search/warmup.py.
With gunicorn's preload_app (gallery/gunicorn_conf.py) this runs once in the master, before the
workers fork."""

import os

from django.conf import settings
from django.core.servers import basehttp
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
application = get_wsgi_application()
# The URLconf, and with it every view module and the API's schemas, loads on the first request
# otherwise.
get_resolver().url_patterns  # noqa: B018 - imported for its side effect

# `manage.py runserver` (the demo's server) builds its listening socket after importing this
# module, with a backlog of 10 pending connections: a burst of concurrent visitors beyond that
# had connections reset. Gunicorn has its own backlog setting and never reads this one.
basehttp.WSGIServer.request_queue_size = 128

if settings.GALLERY_WARM_QUERY_ENCODER:
    from search.warmup import warm_query_encoder

    warm_query_encoder()
