"""Cross-cutting HTTP behaviour: Content-Security-Policy, rate limits on the query endpoints,
HEAD on the API, and clean 503 / 500 answers (pages that need no database, JSON under /api/)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.html import escape

from search.errors import error_body

logger = logging.getLogger(__name__)

Handler = Callable[[HttpRequest], HttpResponse]


# The API's `code` for the errors answered here (the API documents {"detail", "code"} bodies).
ERROR_CODES = {429: "rate_limited", 500: "server_error", 503: "unavailable"}

# The headings of templates/error.html, for when that page cannot be rendered.
TITLES = {503: "Temporarily unavailable", 429: "Slow down"}


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/healthz")) or "application/json" in (
        request.headers.get("Accept", "")
    )


def _error(request: HttpRequest, status: int, message: str, **headers: str) -> HttpResponse:
    response: HttpResponse
    if _wants_json(request):
        code = ERROR_CODES.get(status, "error")
        response = JsonResponse(error_body(detail=message, code=code), status=status)
    else:
        html: str
        try:
            context = {
                "status": status,
                "message": message,
                "retry_after": headers.get("Retry_After", ""),
                # Reloading repeats the request: offered only where that is harmless.
                "can_retry": request.method in ("GET", "HEAD"),
            }
            html = render_to_string("error.html", context, request)
        except Exception:  # the page itself may need what is failing (the database, say)
            logger.exception("error page could not be rendered; answering in plain text")
            heading = TITLES.get(status, "Something went wrong")
            html = f"<!doctype html><title>{heading}</title><h1>{heading}</h1><p>{escape(message)}"
        response = HttpResponse(html, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class ContentSecurityPolicyMiddleware:
    """A strict policy for our pages; the admin and the API docs get inline styles too, which
    their vendored front ends need."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.strict = settings.CONTENT_SECURITY_POLICY
        self.relaxed = self.strict.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            relaxed = request.path.startswith(("/admin/", "/api/docs"))
            response["Content-Security-Policy"] = self.relaxed if relaxed else self.strict
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


class ApiHeadMiddleware:
    """HEAD wherever GET works, on the API too: django-ninja answers HEAD with 405 on its GET
    routes, so an API HEAD request runs as GET and the body is dropped (its headers, and the
    length it would have had, are kept). Django's own views take HEAD through require_safe."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "HEAD" or not request.path.startswith("/api/"):
            return self.get_response(request)
        request.method = "GET"
        response = self.get_response(request)
        if not response.streaming:
            response["Content-Length"] = str(len(response.content))
            response.content = b""
        return response


class DatabaseUnavailableMiddleware:
    """A database that went away mid-request becomes a 503 with Retry-After, not a 500.

    The broken connection is closed so the next request opens a fresh one: together with
    CONN_HEALTH_CHECKS, the process recovers by itself when the database is back. Errors raised
    outside views reach `server_error` (handler500) instead."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, OperationalError | InterfaceError):
            return database_unavailable(request, exc)
        return None


def close_broken_connections() -> None:
    """Drop broken connections now so that the next request opens a fresh one."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.is_usable():
            conn.close()


def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.warning("database unavailable for %s: %s", request.path, exc)
    close_broken_connections()
    message = "The collection database is unavailable or too slow right now. Please retry."
    return _error(request, 503, message, Retry_After="5")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database error raised outside a view (in a middleware, say) is a 503 too."""
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        return database_unavailable(request, exc)
    return _error(request, 500, "An unexpected error occurred; it has been logged.")


class RateLimitMiddleware:
    """Fixed-window request limits per client address.

    GALLERY_RATE_LIMITS maps a budget to (requests, seconds). Every search entry point draws on
    the one "search" budget (the page's searches and uploads, the API's execute, similar and
    list), so a client gets the same number of searches whichever way it asks; artwork pages
    (which also show a few similar artworks) draw on the generous "pages" budget. Counters live
    in the cache, which is Redis in production, so every web process shares them."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        budget = self.budget(request)
        limit = settings.GALLERY_RATE_LIMITS.get(budget) if budget else None
        if budget is not None and limit is not None:
            count, seconds = limit
            now = time.time()
            key = f"ratelimit:{budget}:{self._client(request)}:{int(now // seconds)}"
            if self._spend(key, seconds) > count:
                retry = seconds - int(now) % seconds
                return _error(request, 429, self._message(budget, count, seconds, retry),
                              Retry_After=str(retry))  # fmt: skip
        return self.get_response(request)

    @staticmethod
    def budget(request: HttpRequest) -> str | None:
        """Which budget the request draws on, or None for requests that are not limited."""
        path = request.path
        if path == "/":
            # The landing page is not a search; with parameters (or posted) it is.
            return "search" if request.GET or request.method == "POST" else None
        if path.startswith(("/uploads/", "/api/retrievers/")):
            # The upload previews are only read back by the page that just searched.
            return None if path.endswith("/preview") else "search"
        if path.startswith("/api/artworks"):
            is_detail = path.rstrip("/").removeprefix("/api/artworks/").isdigit()
            return "pages" if is_detail else "search"
        if path.startswith("/artworks/"):
            return "pages"
        return None

    @staticmethod
    def _spend(key: str, seconds: int) -> int:
        """Count one request in the window; returns the count so far. Incrementing first costs
        one cache round trip for every request but a window's first."""
        try:
            return cache.incr(key)
        except ValueError:  # the window's first request, or its key expired just now
            if cache.add(key, 1, timeout=seconds + 1):
                return 1
            return cache.incr(key)  # another process started the window meanwhile

    @staticmethod
    def _message(budget: str, count: int, seconds: int, retry: int) -> str:
        what = "searches" if budget == "search" else "page requests"
        period = "a minute" if seconds == 60 else f"{seconds} seconds"
        return (
            f"Too many {what} from your address: the limit is {count} {period}. "
            f"Please wait {retry} seconds and try again."
        )

    @staticmethod
    def _client(request: HttpRequest) -> str:
        if settings.GALLERY_TRUST_X_FORWARDED_FOR:
            # The last entry is the one our proxy wrote; a proxy that appends keeps whatever the
            # client sent in front of it, so the first entry is the client's to choose.
            forwarded = request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
            if forwarded:
                return forwarded
        return request.META.get("REMOTE_ADDR", "unknown")
