"""GET /api/artworks, /api/artworks/{id}, /api/artworks/{id}/similar."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Query, Router
from pydantic import Field
from pydantic.json_schema import JsonDict

from gallery.models import Artwork
from gallery.schemas import ArtworkDetailOut, ArtworkPageOut
from search.config import max_page_size
from search.errors import BadPagination, UnknownArtwork
from search.filters import filter_artworks
from search.models import Embedding
from search.retriever import RetrievalInputs, execute_retriever
from search.routers import ERRORS, result_payload
from search.schemas import PAGE_SIZE_BOUNDS, TOP_K_BOUNDS, ExecuteOut, FiltersIn
from search.validation import MAX_NAME_CHARS

router = Router(tags=["artworks"])
PAGE_SIZE_MAXIMUM: JsonDict = {"maximum": PAGE_SIZE_BOUNDS["maximum"]}


class PageIn(FiltersIn):
    offset: int = Field(0, ge=0)
    # The upper bound is documented and checked by the handlers (bad_pagination).
    limit: int = Field(settings.GALLERY_PAGE_SIZE, ge=1, json_schema_extra=PAGE_SIZE_MAXIMUM)


class SimilarIn(PageIn):
    top_k: int | None = Field(
        None, description="Replaces the searches' top_k.", json_schema_extra=TOP_K_BOUNDS
    )
    retriever: str = Field(
        "default",
        max_length=MAX_NAME_CHARS,
        description="The retriever whose document search runs.",
    )


# Operation ids as first published (generated clients name their methods after them).
@router.get(
    "/artworks",
    response={200: ArtworkPageOut, **ERRORS},
    url_name="artwork_list",
    operation_id="gallery_api_artwork_list",
)
def artwork_list(request: HttpRequest, params: Query[PageIn]) -> Any:
    """The collection by title, a page at a time, with the search filters."""
    if params.limit > max_page_size():
        raise BadPagination(f"limit must be between 1 and {max_page_size()}.")
    filters = params.to_filters()
    filters.validate()
    queryset = filter_artworks(Artwork.objects.order_by("title", "id"), filters)
    total = queryset.count()
    # Past the end there is nothing to fetch (and an offset beyond bigint would be a DataError).
    page = queryset[params.offset : params.offset + params.limit] if params.offset < total else []
    return {
        "items": [_artwork(artwork) for artwork in page],
        "total": total,
        "offset": params.offset,
        "limit": params.limit,
    }


@router.get(
    "/artworks/{artwork_id}",
    response={200: ArtworkDetailOut, **ERRORS},
    url_name="artwork_detail",
    operation_id="gallery_api_artwork_detail",
)
def artwork_detail(request: HttpRequest, artwork_id: int) -> Any:
    artwork = Artwork.objects.filter(pk=artwork_id).first()
    if artwork is None:
        raise UnknownArtwork(f"There is no artwork with id {artwork_id}.")
    embedded = Embedding.objects.filter(artwork=artwork, feature__is_active=True).exists()
    return {
        **_artwork(artwork),
        **{
            name: getattr(artwork, name)
            for name in (
                "medium",
                "dimensions",
                "credit_line",
                "description",
                "alt_text",
                "source_url",
                "license",
            )
        },
        "image_url": artwork.image.url if artwork.image else "",
        "embedded": embedded,
    }


@router.get(
    "/artworks/{artwork_id}/similar",
    response={200: ExecuteOut, **ERRORS},
    url_name="artwork_similar",
    operation_id="gallery_api_artwork_similar",
)
def artwork_similar(request: HttpRequest, artwork_id: int, params: Query[SimilarIn]) -> Any:
    """Artworks nearest to this one's stored vector (itself left out), with the filters."""
    filters = params.to_filters()
    result = execute_retriever(
        name=params.retriever,
        inputs=RetrievalInputs(document_id=artwork_id),
        filters=filters,
        offset=params.offset,
        limit=params.limit,
        top_k=params.top_k,
    )
    return result_payload(result)


def _artwork(artwork: Artwork) -> dict[str, Any]:
    return {
        "id": artwork.pk,
        "source": artwork.source,
        "external_id": artwork.external_id,
        "title": artwork.title,
        "artist": artwork.artist,
        "display_date": artwork.display_date,
        "classification": artwork.classification,
        "begin_year": artwork.begin_year,
        "end_year": artwork.end_year,
        "thumbnail_url": artwork.thumbnail.url if artwork.thumbnail else "",
        "width": artwork.width,
        "height": artwork.height,
    }
