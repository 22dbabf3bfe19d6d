"""Cross-cutting HTTP behaviour: Content-Security-Policy, rate limits on the query endpoints,
and a clean 503 while the database is unreachable."""

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

logger = logging.getLogger(__name__)

Handler = Callable[[HttpRequest], HttpResponse]


# The headings of templates/error.html, for when that page cannot be rendered.
TITLES = {503: "Temporarily unavailable", 429: "Slow down"}


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/healthz")) or "application/json" in (
        request.headers.get("Accept", "")
    )


def _error(request: HttpRequest, status: int, message: str, **headers: str) -> HttpResponse:
    response: HttpResponse
    if _wants_json(request):
        response = JsonResponse({"detail": message}, status=status)
    else:
        html: str
        try:
            html = render_to_string("error.html", {"status": status, "message": message}, request)
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
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
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


def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.warning("database unavailable for %s: %s", request.path, exc)
    # Drop broken connections now so that the next request opens a fresh one.
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.is_usable():
            conn.close()
    message = "The collection database is unavailable or too slow right now. Please retry."
    return _error(request, 503, message, Retry_After="5")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database error raised outside a view (in a middleware, say) is a 503 too."""
    exc = sys.exc_info()[1]
    if isinstance(exc, OperationalError | InterfaceError):
        return database_unavailable(request, exc)
    return _error(request, 500, "An unexpected error occurred; it has been logged.")


class RateLimitMiddleware:
    """Fixed-window request limits per client address on the query endpoints.

    GALLERY_RATE_LIMITS maps a path prefix ("/" meaning the search page alone) to
    (requests, seconds). Counters live in the cache, which is Redis in production, so every web
    process shares them."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.limits: dict[str, tuple[int, int]] = settings.GALLERY_RATE_LIMITS

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for prefix, (count, seconds) in self.limits.items():
            if request.path.startswith(prefix) and self._is_query(request, prefix):
                window = int(time.time() // seconds)
                key = f"ratelimit:{prefix}:{self._client(request)}:{window}"
                if cache.add(key, 1, timeout=seconds + 1):
                    used = 1
                else:
                    try:
                        used = cache.incr(key)
                    except ValueError:  # expired between add and incr
                        cache.add(key, 1, timeout=seconds + 1)
                        used = 1
                if used > count:
                    retry = str(seconds - int(time.time()) % seconds)
                    return _error(
                        request, 429, "Too many searches; please wait a moment.", Retry_After=retry
                    )
                break
        return self.get_response(request)

    @staticmethod
    def _is_query(request: HttpRequest, prefix: str) -> bool:
        if prefix != "/":
            return True
        # "/" is the search page alone (not every path), and counts only when it carries a
        # search: it is also the landing page.
        return request.path == "/" and (bool(request.GET) or request.method == "POST")

    @staticmethod
    def _client(request: HttpRequest) -> str:
        if settings.GALLERY_TRUST_X_FORWARDED_FOR:
            # The last entry is the one our proxy wrote; a proxy that appends keeps whatever the
            # client sent in front of it, so the first entry is the client's to choose.
            forwarded = request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
            if forwarded:
                return forwarded
        return request.META.get("REMOTE_ADDR", "unknown")
