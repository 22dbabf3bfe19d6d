"""The JSON API: one NinjaAPI, a router per app (docs at /api/docs)."""

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

from gallery.api import router as artworks_router
from search.errors import RetrievalError
from search.routers import router as retrievers_router

api = NinjaAPI(title="Artwork search API", version="1", urls_namespace="api")
api.add_router("/", retrievers_router)
api.add_router("/", artworks_router)


@api.exception_handler(RetrievalError)
def retrieval_error(request: HttpRequest, exc: RetrievalError) -> HttpResponse:
    return api.create_response(
        request, {"detail": exc.message, "code": exc.code}, status=exc.status_code
    )
