"""Health checks for load balancers and container orchestrators.

`/healthz` is liveness: the process answers; it touches nothing else, so a database outage never
gets healthy web processes restarted. `/healthz/ready` is readiness: the database answers and the
query encoder is loaded and warm, so traffic sent here gets no cold first search."""

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from gallery.middleware import close_broken_connections
from search.warmup import query_encoder_state

READY_RETRY_AFTER_SECONDS = 5


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_safe
def readiness(request: HttpRequest) -> JsonResponse:
    database = _database_status()
    encoder = query_encoder_state()
    ready = database == "ok" and encoder.loaded
    response = JsonResponse(
        {
            "status": "ready" if ready else "not ready",
            "database": database,
            "encoder": encoder.as_dict(),
        },
        status=200 if ready else 503,
    )
    if not ready:
        response["Retry-After"] = str(READY_RETRY_AFTER_SECONDS)
    return response


def _database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        close_broken_connections()
        return f"unavailable: {exc}".strip()
    return "ok"
