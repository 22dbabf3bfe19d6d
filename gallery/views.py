"""The gallery's pages: the search page (/), the artwork page, and query-image uploads.

Views only parse, call, and render. One template per page; with HTMX the view renders the
partial that the request targets (django-template-partials' "template#partial").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST
from django.views.static import serve
from django_htmx.http import reswap, retarget
from django_htmx.middleware import HtmxDetails

from gallery.images import ImageError
from gallery.models import Artwork
from gallery.query import SearchQuery, merged_params
from gallery.uploads import upload_load, upload_preview, upload_store
from search.retriever import (
    Filters,
    ResultItem,
    RetrievalError,
    RetrievalInputs,
    RetrievalResult,
    execute_retriever,
)

logger = logging.getLogger(__name__)


class HtmxHttpRequest(HttpRequest):
    """HttpRequest as django-htmx's middleware leaves it (its documented typing recipe)."""

    htmx: HtmxDetails


PAGE_SIZE = 24  # results per page; GALLERY_PAGE_SIZE overrides it
SIMILAR_STRIP = 12
SEARCH_TEMPLATE = "gallery/search.html"


def page_size() -> int:
    return int(getattr(settings, "GALLERY_PAGE_SIZE", PAGE_SIZE))


@dataclass(frozen=True)
class Card:
    """One result as the templates show it (search hits and browsing share it)."""

    artwork_id: int
    title: str
    artist: str
    display_date: str
    thumbnail_url: str
    width: int | None
    height: int | None
    alt: str


@dataclass(frozen=True)
class Chip:
    """One non-text input of the query, shown as a removable chip."""

    kind: str  # "similar" | "upload"
    label: str
    image_url: str
    remove_url: str
    link_url: str = ""


@dataclass
class SearchOutcome:
    query: SearchQuery
    cards: list[Card] = field(default_factory=list)
    total: int = 0
    mode: str = "browse"  # "browse" (no inputs: the collection, filtered) or "search"
    error: str = ""
    status: int = 200
    timing: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    chips: list[Chip] = field(default_factory=list)

    @property
    def next_offset(self) -> int | None:
        following = self.query.offset + page_size()
        return following if following < self.total else None


@require_GET
def home(request: HtmxHttpRequest) -> HttpResponse:
    """The search page: the collection when nothing is asked, else the retriever's results."""
    query = SearchQuery.from_params(request.GET)
    outcome = run_search(query=query)
    return _render_search(request, outcome)


@require_POST
def upload(request: HtmxHttpRequest) -> HttpResponse:
    """A query image: stored under a short-lived id, then searched (the URL carries the id).

    The form's action URL holds the page's state for browsers without JavaScript; with HTMX the
    search form's current fields arrive in the body and take precedence."""
    query = SearchQuery.from_params(merged_params(request.GET, request.POST))
    file = request.FILES.get("image")
    try:
        if file is None:
            raise ImageError("Choose an image file to search with.")
        if file.size and file.size > settings.GALLERY_MAX_UPLOAD_BYTES:
            raise ImageError(
                f"The file is {file.size / 1e6:.1f} MB; the limit is "
                f"{settings.GALLERY_MAX_UPLOAD_BYTES / 1e6:.0f} MB."
            )
        stored = upload_store(data=file.read())
    except ImageError as exc:
        message = f"{exc} Your previous results are still shown."
        if request.htmx:
            # Only the message beside the input changes: the results stay as they were.
            response = render(request, f"{SEARCH_TEMPLATE}#upload-error", {"upload_error": message})
            return reswap(retarget(response, "#upload-error"), "outerHTML")
        outcome = run_search(query=query)
        return _render_search(request, outcome, upload_error=message, status=422)
    query = query.but(upload=stored.upload_id)
    if request.htmx:
        return _render_search(request, run_search(query=query), partial="search")
    return HttpResponseRedirect(query.url(reverse("home")), status=303)


@require_GET
@cache_control(private=True, max_age=3600)
def upload_preview_image(request: HttpRequest, upload_id: str) -> HttpResponse:
    data = upload_preview(upload_id=upload_id)
    if data is None:
        raise Http404("This upload has expired.")
    return HttpResponse(data, content_type="image/webp")


@require_GET
def artwork_detail(request: HttpRequest, pk: int) -> HttpResponse:
    artwork = get_object_or_404(Artwork, pk=pk)
    similar: list[Card] = []
    similar_error = ""
    try:
        result = _retrieve(query=SearchQuery(similar=artwork.pk), limit=SIMILAR_STRIP)
        similar = _cards_from_items(result.results)
    except RetrievalError as exc:
        similar_error = _friendly_error(exc)
    context = {
        "artwork": artwork,
        "similar": similar,
        "similar_error": similar_error,
        "similar_url": SearchQuery(similar=artwork.pk).url(reverse("home")),
        "description_credit": _description_credit(artwork),
    }
    return render(request, "gallery/artwork.html", context)


@require_GET
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """MEDIA_ROOT's files, only in development and tests (see gallery/urls.py)."""
    if not (settings.DEBUG or getattr(settings, "GALLERY_SERVE_MEDIA", False)):
        raise Http404("Media files are not served by this process.")
    return serve(request, path, document_root=str(settings.MEDIA_ROOT))


# --- the search itself -------------------------------------------------------------------------


def run_search(*, query: SearchQuery) -> SearchOutcome:
    """Search with the query's inputs, or browse the filtered collection when it has none."""
    outcome = SearchOutcome(query=query)
    # Read once here and handed to the retriever: the file is read per search, not twice.
    upload = upload_load(upload_id=query.upload) if query.upload else None
    if query.upload and upload is None:
        outcome.notices.append("The uploaded image has expired; upload it again to search by it.")
        query = outcome.query = query.but(upload="", offset=query.offset)
    if query.similar:
        reference = Artwork.objects.filter(pk=query.similar).first()
        if reference is None:
            outcome.notices.append(f"There is no artwork {query.similar} in the collection.")
            query = outcome.query = query.but(similar=None, offset=query.offset)
        else:
            outcome.chips.append(
                Chip(
                    kind="similar",
                    label=reference.title or "Untitled",
                    image_url=reference.thumbnail.url if reference.thumbnail else "",
                    remove_url=query.but(similar=None).url(),
                    link_url=reverse("artwork", args=[reference.pk]),
                )
            )
    if query.upload:
        outcome.chips.append(
            Chip(
                kind="upload",
                label="your image",
                image_url=reverse("upload-preview", args=[query.upload]),
                remove_url=query.but(upload="").url(),
            )
        )
    if query.has_inputs:
        _search(query, outcome, image=upload.data if upload else None)
    else:
        _browse(query, outcome)
    return outcome


def _search(query: SearchQuery, outcome: SearchOutcome, *, image: bytes | None) -> None:
    outcome.mode = "search"
    try:
        result = _retrieve(query=query, limit=page_size(), image=image)
    except RetrievalError as exc:
        outcome.error = _friendly_error(exc)
        outcome.status = exc.status_code
        return
    outcome.notices.extend(result.notices)  # e.g. the image model is unavailable
    outcome.cards = _cards_from_items(result.results)
    outcome.total = result.total
    outcome.timing = _timing_line(result)


def _retrieve(*, query: SearchQuery, limit: int, image: bytes | None = None) -> RetrievalResult:
    return execute_retriever(
        inputs=RetrievalInputs(
            text=query.q,
            image=image,
            document_id=query.similar,
        ),
        filters=_filters(query),
        offset=query.offset,
        limit=limit,
    )


def _browse(query: SearchQuery, outcome: SearchOutcome) -> None:
    filters = _filters(query)
    try:
        filters.validate()
    except RetrievalError as exc:
        outcome.error = exc.message
        outcome.status = exc.status_code
        return
    artworks = _filtered(Artwork.objects.all(), filters).order_by("title", "id")
    outcome.total = artworks.count()
    page = artworks[query.offset : query.offset + page_size()]
    outcome.cards = [_card(artwork) for artwork in page]


def _filters(query: SearchQuery) -> Filters:
    return Filters(
        classification=query.classification,
        artist=query.artist,
        year_from=query.year_from,
        year_to=query.year_to,
        source=query.source,
    )


def _filtered(artworks: QuerySet[Artwork], filters: Filters) -> QuerySet[Artwork]:
    """The retriever's filter semantics (search/filters.py), in the ORM, for browsing."""
    if filters.classification:
        artworks = artworks.filter(classification__iexact=filters.classification.strip())
    if filters.artist:
        artworks = artworks.filter(artist__icontains=" ".join(filters.artist.split()))
    if filters.source:
        artworks = artworks.filter(source=filters.source.strip())
    if filters.year_from is not None or filters.year_to is not None:
        artworks = artworks.annotate(
            _last=Coalesce("end_year", "begin_year"), _first=Coalesce("begin_year", "end_year")
        )
        if filters.year_from is not None:
            artworks = artworks.filter(_last__gte=filters.year_from)
        if filters.year_to is not None:
            artworks = artworks.filter(_first__lte=filters.year_to)
    return artworks


def _card(artwork: Artwork) -> Card:
    return Card(
        artwork_id=artwork.pk,
        title=artwork.title or "Untitled",
        artist=artwork.artist,
        display_date=artwork.display_date,
        thumbnail_url=artwork.thumbnail.url if artwork.thumbnail else "",
        width=artwork.width,
        height=artwork.height,
        alt=_alt(artwork.alt_text, artwork.title, artwork.artist),
    )


def _cards_from_items(items: list[ResultItem]) -> list[Card]:
    # Result items carry no alt text: fetch it for the page in one query.
    ids = [item.artwork_id for item in items]
    alts = dict(Artwork.objects.filter(pk__in=ids).values_list("pk", "alt_text"))
    return [
        Card(
            artwork_id=item.artwork_id,
            title=item.title or "Untitled",
            artist=item.artist,
            display_date=item.display_date,
            thumbnail_url=item.thumbnail_url or "",
            width=item.width,
            height=item.height,
            alt=_alt(alts.get(item.artwork_id, ""), item.title, item.artist),
        )
        for item in items
    ]


def _alt(alt_text: str, title: str, artist: str) -> str:
    if alt_text:
        return alt_text
    name = title or "Untitled"
    return f"{name}, by {_short_artist(artist)}" if artist else name


def _short_artist(artist: str) -> str:
    """'Claude Monet (French, 1840–1926)' -> 'Claude Monet' (for alt text and labels)."""
    return artist.split(" (", 1)[0].strip() or artist


def _friendly_error(exc: RetrievalError) -> str:
    if exc.status_code == 409:
        return (
            "This search cannot run yet: the artworks have not all been indexed. "
            "Try again in a little while."
        )
    return getattr(exc, "message", "") or str(exc)


def _timing_line(result: RetrievalResult) -> list[str]:
    """Discreet per-stage timing: 'text: encode 80 ms, kNN 9 ms · rrf of 2 · 95 ms in all'."""
    parts: list[str] = []
    for stage in result.stages:
        for search in stage.searches:
            encode = (
                "cached vector" if search.vector_cached else f"encode {search.encode_ms:.0f} ms"
            )
            if search.input_mode in {"document", "keywords"}:
                parts.append(f"{search.name}: {search.knn_ms:.0f} ms")
            else:
                parts.append(f"{search.name}: {encode}, kNN {search.knn_ms:.0f} ms")
        if stage.num_features > 1:
            parts.append(f"{stage.fusion_strategy} of {stage.num_features}")
    if result.cache_hit:
        # The searches' figures are those of the run that filled the cache.
        return [f"from the cache in {result.duration_ms:.0f} ms (computed: {' · '.join(parts)})"]
    parts.append(f"{result.duration_ms:.0f} ms in all")
    return parts


def _description_credit(artwork: Artwork) -> str:
    if artwork.description and artwork.source == Artwork.Source.AIC:
        return "Description: Art Institute of Chicago, CC BY 4.0"
    return ""


# --- rendering ---------------------------------------------------------------------------------


def _render_search(
    request: HtmxHttpRequest,
    outcome: SearchOutcome,
    *,
    upload_error: str = "",
    status: int | None = None,
    partial: str | None = None,
) -> HttpResponse:
    template = SEARCH_TEMPLATE
    is_partial = bool(request.htmx) and not request.htmx.history_restore_request
    if is_partial:
        # Load more appends cards to the list; everything else swaps the whole search area.
        target = "page" if request.htmx.target == "result-list" else "search"
        template += "#" + (partial or target)
    context = {
        "query": outcome.query,
        "outcome": outcome,
        "upload_error": upload_error,
        # The cards alone (Load more) show no filters: spare their two queries.
        "filter_choices": {} if template.endswith("#page") else _filter_choices(),
        "upload_action": outcome.query.url(reverse("upload")),
    }
    response = render(
        request,
        template,
        context,
        # HTMX does not swap 4xx/5xx responses: the partial carries its error state in a 200.
        status=200 if is_partial else (status or outcome.status),
    )
    if is_partial and request.htmx.target != "result-list":
        # The canonical URL (no empty parameters, no expired upload) goes into the history.
        response["HX-Push-Url"] = outcome.query.url(reverse("home"))
    patch_vary_headers(response, ["HX-Request"])  # caches keep page and partial apart
    return response


def _filter_choices() -> dict[str, list[tuple[str, str]]]:
    classifications = (
        Artwork.objects.exclude(classification="")
        .order_by("classification")
        .values_list("classification", flat=True)
        .distinct()
    )
    present = set(Artwork.objects.order_by().values_list("source", flat=True).distinct())
    return {
        "classification": [(value, value) for value in classifications],
        "source": [(value, label) for value, label in Artwork.Source.choices if value in present],
    }
