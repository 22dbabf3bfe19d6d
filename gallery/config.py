"""Every environment variable the application reads, declared once: name, type, default, meaning.

`Config()` reads the environment once (gallery/settings.py turns it into Django settings, and code
reads those as `settings.X`); `WebServerConfig()` does the same for gunicorn's options
(gallery/gunicorn_conf.py). Nothing here touches Django, the disk or the network, so reading the
configuration starts nothing. A value of the wrong type stops the process with an error naming the
variable; an empty variable counts as unset.

The README's configuration table is generated from these declarations (`python -m gallery.config`
prints it) and tests/test_config.py fails when the two differ.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BASE_DIR = Path(__file__).resolve().parent.parent

# Comma-separated in the environment ("a.example,b.example"), not JSON.
CommaList = Annotated[list[str], NoDecode]


def setting(default: Any, doc: str, *, shown: str | None = None) -> Any:
    """A declared setting: its default, one line for the README, and the default as the README
    shows it when the value itself would not say it well (a path, a size)."""
    return Field(default, description=doc, json_schema_extra={"shown": shown} if shown else None)


def derived(default: Callable[[dict[str, Any]], Any], doc: str, *, shown: str) -> Any:
    """A setting whose default follows settings declared above it (`default` gets their
    values): DJANGO_DEBUG, mostly."""
    return Field(default_factory=default, description=doc, json_schema_extra={"shown": shown})


class _Environment(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True)

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        # " 1 " is on, as it always was.
        return value.strip() if isinstance(value, str) else value


class Config(_Environment):
    """The Django application's settings (gallery/settings.py)."""

    # Django
    DJANGO_DEBUG: bool = setting(False, "development mode", shown="off (`make` turns it on)")
    DJANGO_SECRET_KEY: str = setting(
        "", "required when `DJANGO_DEBUG` is off", shown="none (a fixed key with debug on)"
    )
    ALLOWED_HOSTS: CommaList = derived(
        lambda values: ["localhost", "127.0.0.1", "[::1]"] if values["DJANGO_DEBUG"] else [],
        "host names served, comma-separated",
        shown="localhost names with debug on, else none",
    )
    CSRF_TRUSTED_ORIGINS: CommaList = setting([], "origins trusted for POSTs, comma-separated")
    LOG_LEVEL: str = setting("INFO", "level of the console log")
    STATIC_ROOT: Path = setting(
        BASE_DIR / "staticfiles",
        "where `collectstatic` gathers static files",
        shown="`./staticfiles`",
    )
    MEDIA_URL: str = setting("/media/", "URL prefix of originals and thumbnails")
    MEDIA_ROOT: Path = setting(BASE_DIR / "media", "originals and thumbnails", shown="`./media`")

    # Database
    DATABASE_URL: str = setting(
        "",
        "PostgreSQL with pgvector ≥ 0.7",
        shown="unset: the embedded PostgreSQL 18 + pgvector 0.8, started on first connection",
    )
    GALLERY_PGDATA: Path = setting(
        BASE_DIR / ".pgdata", "data folder of the embedded PostgreSQL", shown="`./.pgdata`"
    )
    GALLERY_DATABASE_NAME: str = setting("gallery", "database on the embedded server")
    GALLERY_PG_SHARED_BUFFERS: str = setting(
        "2GB",
        "the embedded server's `shared_buffers` (as compose's PostgreSQL): the HNSW index stays "
        "in PostgreSQL's memory; a change restarts the server once",
    )
    DATABASE_POOL_MAX_SIZE: int = setting(16, "pooled database connections per process")
    DATABASE_POOL_TIMEOUT: float = setting(
        5.0, "seconds a request waits for a pooled connection before its 503"
    )
    DATABASE_STATEMENT_TIMEOUT_MS: int = setting(30000, "statement timeout on every query (ms)")
    SEARCH_HELPER_CONNECTIONS: int = setting(
        4, "connections per process for searches run beside the query encoder (outside the pool)"
    )

    # Security
    SECURE_PROXY_SSL_HEADER_NAME: str = setting(
        "",
        "header by which a TLS-terminating proxy says https (e.g. `HTTP_X_FORWARDED_PROTO`)",
        shown="unset",
    )
    SECURE_SSL_REDIRECT: bool = derived(
        lambda values: not values["DJANGO_DEBUG"],
        "redirect http to https",
        shown="on unless `DJANGO_DEBUG`",
    )
    SECURE_HSTS_SECONDS: int = derived(
        lambda values: 0 if values["DJANGO_DEBUG"] else 31_536_000,
        "HSTS lifetime (s)",
        shown="31536000, 0 with debug on",
    )
    SECURE_HSTS_INCLUDE_SUBDOMAINS: bool = derived(
        lambda values: not values["DJANGO_DEBUG"],
        "HSTS covers subdomains",
        shown="on unless `DJANGO_DEBUG`",
    )
    SECURE_HSTS_PRELOAD: bool = setting(False, "ask browsers to preload HSTS for the domain")
    GALLERY_RATE_LIMIT_PER_MINUTE: int = setting(120, "searches per client address per minute")
    GALLERY_PAGE_RATE_LIMIT_PER_MINUTE: int = derived(
        lambda values: 5 * values["GALLERY_RATE_LIMIT_PER_MINUTE"],
        "artwork pages per client address per minute",
        shown="5 × the search limit",
    )
    GALLERY_TRUST_X_FORWARDED_FOR: bool = setting(
        False, "rate-limit by X-Forwarded-For (only behind a proxy that sets it)"
    )

    # Images and pages
    GALLERY_MAX_UPLOAD_BYTES: int = setting(
        20 * 1024 * 1024, "largest image upload accepted (bytes)", shown="20 MiB"
    )
    GALLERY_MAX_IMAGE_PIXELS: int = setting(
        64_000_000,
        "largest image accepted (pixels; the decompression-bomb limit)",
        shown="64 megapixels",
    )
    GALLERY_MAX_FULL_DECODE_PIXELS: int = setting(
        16_000_000,
        "largest query image in a format decoded whole (all but JPEG)",
        shown="16 megapixels",
    )
    GALLERY_QUERY_UPLOAD_DIR: Path | None = setting(
        None,
        "visitors' query images (outside `MEDIA_ROOT`)",
        shown="`query-uploads` beside `MEDIA_ROOT`",
    )
    GALLERY_QUERY_UPLOAD_TTL: int = setting(3600, "lifetime of a visitor's query image (s)")
    GALLERY_PAGE_SIZE: int = setting(24, "results per page")
    GALLERY_SERVE_MEDIA: bool = setting(False, "Django serves media files (else the proxy does)")
    GALLERY_THUMBNAIL_SIZE: int = setting(400, "longest side of a thumbnail (pixels)")
    GALLERY_IMPORT_DIR: Path | None = setting(
        None,
        "files of imports started in the admin (outside `MEDIA_ROOT`; web and workers share it)",
        shown="`import-uploads` beside `MEDIA_ROOT`",
    )
    GALLERY_IMPORT_MAX_UPLOAD_BYTES: int = setting(
        1024**3, "largest upload of an import started in the admin (bytes)", shown="1 GiB"
    )
    GALLERY_IMPORT_MAX_UNPACKED_BYTES: int = setting(
        4 * 1024**3, "most an uploaded ZIP may expand to (bytes)", shown="4 GiB"
    )
    GALLERY_IMPORT_MAX_ENTRIES: int = setting(100_000, "most entries an uploaded ZIP may hold")

    # The model
    GALLERY_EMBEDDING_MODEL: str = setting(
        "google/siglip-base-patch16-224",
        "SigLIP checkpoint of the first embedding feature: Hugging Face id or local folder "
        "(later features are built from the admin)",
    )
    GALLERY_EMBEDDING_DEVICE: str = setting(
        "auto", "`auto` (CUDA, then MPS, then CPU), `cpu`, `cuda:N`, `mps`"
    )
    GALLERY_EMBEDDING_FALLBACK: bool = derived(
        lambda values: values["DJANGO_DEBUG"],
        "use the offline test model when the real one cannot load",
        shown="on with debug",
    )
    GALLERY_TEST_MODEL_DIR: Path = setting(
        BASE_DIR / "var" / "test-model",
        "where the offline test model is built",
        shown="`./var/test-model`",
    )
    GALLERY_TORCH_THREADS: int = setting(
        0, "torch CPU threads per process (1 is best for web processes)", shown="0: torch's default"
    )
    GALLERY_QUERY_ENCODER: str = setting(
        "auto", "query encoder: `onnx`, `torch`, or `auto` (ONNX Runtime on a CPU, torch on a GPU)"
    )
    GALLERY_ONNX_CACHE_DIR: Path = setting(
        BASE_DIR / "var" / "onnx",
        "where ONNX exports of the checkpoint are kept",
        shown="`./var/onnx`",
    )
    GALLERY_ONNX_THREADS: int = setting(
        0, "ONNX Runtime threads per process", shown="0: `GALLERY_TORCH_THREADS`, else every core"
    )
    GALLERY_QUERY_QUANTIZE: str = setting(
        "", "`int8`: dynamic int8 PyTorch query encoder on CPU (workers keep fp32)", shown="off"
    )
    GALLERY_ENCODER_RETRY_SECONDS: float = setting(
        30.0, "after a model fails to load, searches use keywords alone this long before a retry"
    )
    GALLERY_WARM_QUERY_ENCODER: bool = setting(
        True, "web processes load and warm the query encoder before serving"
    )
    HF_HUB_OFFLINE: bool = setting(
        False, "never reach the Hugging Face hub (machines without internet; tests set it)"
    )
    TRANSFORMERS_OFFLINE: bool = setting(False, "the same, under transformers' older name")

    # Embedding workers
    GALLERY_EMBED_MODEL_BATCH: int | None = setting(
        None, "images per model batch in a worker", shown="16 on CPU, 64 on GPU"
    )
    GALLERY_EMBED_DECODE_THREADS: int | None = setting(
        None, "image decoding threads per worker", shown="min(4, cores)"
    )
    GALLERY_EMBED_TASK_BATCH: int = setting(64, "artworks per embedding task")

    # Retrieval
    SEARCH_CACHE_TTL: int = setting(600, "result cache lifetime (s)")
    SEARCH_TEXT_VECTOR_CACHE_TTL: int = setting(86400, "cached text query vectors' lifetime (s)")
    SEARCH_HNSW_EF_SEARCH: int = setting(
        400, "HNSW candidate list of image and find-similar searches"
    )
    SEARCH_HNSW_EF_SEARCH_TEXT: int = setting(800, "HNSW candidate list of text searches")
    SEARCH_EXACT_SCAN_MAX_ROWS: int = setting(
        15000, "a filtered search keeping at most this many artworks scans them exactly …"
    )
    SEARCH_EXACT_SCAN_MAX_PERCENT: int = setting(
        20, "… and at most this share of the collection (%), else the index is walked"
    )
    SEARCH_OVERLAP_SEARCHES: bool = setting(
        True, "run document/keyword searches on a second connection while text is encoded"
    )
    SEARCH_MAX_TEXT_CHARS: int = setting(1000, "longest text query (characters)")
    SEARCH_MAX_PAGE_SIZE: int = setting(200, "largest page of results the API serves")
    SEARCH_MAX_REFERENCES: int = setting(6, "most reference (and negative) artworks per query")

    # Celery and the cache
    CELERY_BROKER_URL: str = setting("amqp://guest:guest@127.0.0.1:5672//", "Celery broker")
    CELERY_RESULT_BACKEND: str | None = setting(None, "Celery result backend", shown="none")
    CELERY_TASK_ALWAYS_EAGER: bool = setting(False, "run tasks in the calling process")
    CELERY_BROKER_HEARTBEAT: int = setting(
        30, "AMQP heartbeat (s): a vanished worker's batch is redelivered after about this long"
    )
    CELERY_VISIBILITY_TIMEOUT: int = setting(
        3600, "Redis broker only: seconds before an unacknowledged batch is redelivered"
    )
    REDIS_CACHE_URL: str = setting(
        "",
        "Django cache (results, query vectors, rate limits)",
        shown="unset: a per-process memory cache",
    )

    @field_validator("ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


class WebServerConfig(_Environment):
    """gunicorn's options for the web processes (gallery/gunicorn_conf.py)."""

    GALLERY_WEB_BIND: str = setting("0.0.0.0:8000", "address gunicorn listens on")
    GALLERY_WEB_WORKERS: int = setting(3, "gunicorn worker processes")
    GALLERY_WEB_THREADS: int = setting(2, "request threads per gunicorn worker")
    GALLERY_WEB_PRELOAD: bool = setting(
        True, "load and warm the model in gunicorn's master before it forks its workers"
    )


def declared() -> dict[str, FieldInfo]:
    """Every declared variable, in declaration order."""
    return {**Config.model_fields, **WebServerConfig.model_fields}


def _shown_default(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and extra.get("shown"):
        return str(extra["shown"])
    value = field.default
    if isinstance(value, bool):
        return "on" if value else "off"
    if value in ("", None, []):
        return "unset"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    for name, field in declared().items():
        rows.append(f"| `{name}` | {field.description} | {_shown_default(field)} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")  # noqa: T201 - the table is this command's output
