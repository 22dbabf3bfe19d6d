import re
from urllib.parse import urlparse

from django.conf import settings
from django.contrib import admin
from django.urls import path, re_path

from gallery import views
from gallery.api import api
from gallery.health import healthz, readiness

# Errors raised outside a view's own handling (and any 500 with DEBUG off): a styled page that
# needs no database, JSON under /api/.
handler500 = "gallery.middleware.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("artworks/<int:pk>/", views.artwork_detail, name="artwork"),
    path("uploads/", views.upload, name="upload"),
    path("uploads/<str:upload_id>/preview", views.upload_preview_image, name="upload-preview"),
    path("healthz", healthz, name="healthz"),
    path("healthz/ready", readiness, name="readiness"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]

# Uploaded media in development (DEBUG) and in tests (GALLERY_SERVE_MEDIA): checked, and
# MEDIA_ROOT read, on each request, so a test's own MEDIA_ROOT is served. Production serves
# MEDIA_ROOT from the web server or object storage instead.
if not urlparse(settings.MEDIA_URL).netloc:
    urlpatterns.append(
        re_path(rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.*)$", views.media)
    )
