"""The JSON API: one NinjaAPI, a router per app (docs at /api/docs).

Every error it answers is `{"detail": <text>, "code": <word>}` (ErrorOut), whatever its status:
ours, django-ninja's own validation errors and 404s, and unexpected failures."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from gallery.routers import router as artworks_router
from search.errors import RetrievalError, error_body
from search.routers import router as retrievers_router

logger = logging.getLogger(__name__)

api = NinjaAPI(title="Artwork search API", version="1", urls_namespace="api")
api.add_router("/", retrievers_router)
api.add_router("/", artworks_router)


def _error(request: HttpRequest, *, status: int, detail: str, code: str) -> HttpResponse:
    return api.create_response(request, error_body(detail=detail, code=code), status=status)


@api.exception_handler(RetrievalError)
def retrieval_error(request: HttpRequest, exc: RetrievalError) -> HttpResponse:
    return _error(request, status=exc.status_code, detail=exc.message, code=exc.code)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _error(request, status=422, detail=describe(exc.errors), code="bad_request")


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, status=404, detail="Not found.", code="not_found")


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, status=exc.status_code, detail=str(exc), code="http_error")


@api.exception_handler(Exception)
def unexpected_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    if isinstance(exc, OperationalError | InterfaceError):
        # The database middleware answers these: a 503 with Retry-After that drops the broken
        # connection.
        raise exc
    logger.exception("API error on %s", request.path, exc_info=exc)
    return _error(
        request,
        status=500,
        detail="An unexpected error occurred; it has been logged.",
        code="server_error",
    )


def describe(errors: list[dict[str, object]]) -> str:
    """django-ninja's error list as one sentence per field: "query.limit: Input should be ..."."""
    parts = []
    for error in errors:
        location = error.get("loc")
        steps = location if isinstance(location, list | tuple) else ()
        where = ".".join(str(part) for part in steps if part not in ("body", "payload"))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where or 'request'}: {message}")
    return "; ".join(parts) or "The request is not valid."
