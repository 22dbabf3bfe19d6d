"""The gallery's pages: the search page (/), the artwork page, and query-image uploads.

Views only parse, call one function of gallery/selectors/, and render. One template per page;
with HTMX the view renders the partial that the request targets (django-template-partials'
"template#partial"): the results alone for a search typed in the form (the form, where the
visitor may be typing, is left alone), the whole search area when an input is added or removed,
the next cards for "Load more".
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST, require_safe
from django.views.static import serve
from django_htmx.http import push_url, replace_url, reswap, retarget
from django_htmx.middleware import HtmxDetails

from gallery.images import ImageError, too_many_bytes
from gallery.query import FIELD_NAMES, SearchQuery, merged_params
from gallery.selectors import (
    WEIGHT_INPUT_PREFIX,
    SearchOutcome,
    artwork_page,
    filter_choices,
    search_page,
)
from gallery.uploads import upload_preview, upload_store

SEARCH_TEMPLATE = "gallery/search.html"
# The element an HTMX request targets -> the partial that answers it.
PARTIALS = {"result-list": "page", "results": "results-swap", "search": "search-swap"}


class HtmxHttpRequest(HttpRequest):
    """HttpRequest as django-htmx's middleware leaves it (its documented typing recipe)."""

    htmx: HtmxDetails


@require_safe
def home(request: HtmxHttpRequest) -> HttpResponse:
    """The search page: the collection when nothing is asked, else the retriever's results."""
    query = SearchQuery.from_params(request.GET)
    # "Load more" appends cards alone: the facets it would count are already on the page.
    more = _partial_for(request) == "page"
    outcome = search_page(query=query, with_facets=not more)
    return _render_search(request, outcome, start=_count(request.GET.get("start")))


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
            limit = settings.GALLERY_MAX_UPLOAD_BYTES
            raise ImageError(too_many_bytes(size=file.size, limit=limit))
        stored = upload_store(data=file.read())
    except ImageError as exc:
        message = f"{exc} Your previous results are still shown."
        if request.htmx:
            # Only the message beside the input changes: the results stay as they were.
            response = render(request, f"{SEARCH_TEMPLATE}#upload-error", {"upload_error": message})
            return reswap(retarget(response, "#upload-error"), "outerHTML")
        return _render_search(request, search_page(query=query), upload_error=message, status=422)
    # A new picture is the picture to search by: a region or a "less like" of the last one
    # does not carry over to it.
    region = query.region if query.region and query.region.document_id else None
    query = query.but(upload=stored.upload_id, unlike_upload=False, region=region)
    if request.htmx:
        return _render_search(request, search_page(query=query), partial="search-swap")
    return HttpResponseRedirect(query.url(reverse("home")), status=303)


@require_safe
@cache_control(private=True, max_age=3600)
def upload_preview_image(request: HttpRequest, upload_id: str) -> HttpResponse:
    data = upload_preview(upload_id=upload_id)
    if data is None:
        raise Http404("This upload has expired.")
    return HttpResponse(data, content_type="image/webp")


@require_safe
def artwork_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An artwork; reached from a result, the URL carries that search and the result's rank."""
    rank = _count(request.GET.get("rank"))
    search = SearchQuery.from_params(request.GET) if rank else None
    page = artwork_page(pk=pk, search=search, rank=rank)
    if page is None:
        raise Http404("There is no such artwork.")
    context = {
        "page": page,
        "by_artist": page.by_artist,
        "artwork": page.artwork,
        "similar": page.similar,
        "similar_error": page.similar_error,
        "similar_url": page.similar_url,
        "similar_query": page.strip_query,
        "description_credit": page.description_credit,
    }
    return render(request, "gallery/artwork.html", context)


@require_safe
def media(request: HttpRequest, path: str) -> HttpResponseBase:
    """MEDIA_ROOT's files, only in development and tests (see gallery/urls.py)."""
    if not (settings.DEBUG or settings.GALLERY_SERVE_MEDIA):
        raise Http404("Media files are not served by this process.")
    return serve(request, path, document_root=str(settings.MEDIA_ROOT))


def _render_search(
    request: HtmxHttpRequest,
    outcome: SearchOutcome,
    *,
    upload_error: str = "",
    status: int | None = None,
    partial: str | None = None,
    start: int = 0,
) -> HttpResponse:
    template = SEARCH_TEMPLATE
    target = _partial_for(request)
    is_partial = target is not None
    if is_partial and partial:
        target = partial
    if target is not None:
        template += "#" + target
    context = {
        "query": outcome.query,
        "outcome": outcome,
        "upload_error": upload_error,
        # The cards alone (Load more) show no filters: spare their two queries.
        "filter_choices": {} if template.endswith("#page") else filter_choices(),
        "upload_action": outcome.query.url(reverse("upload")),
        "max_text_chars": settings.SEARCH_MAX_TEXT_CHARS,
        "field_names": FIELD_NAMES,
        # Where the list on the page starts: "Load more" keeps it in the URL it leaves behind.
        "start": start if template.endswith("#page") else outcome.query.offset,
    }
    response = render(
        request,
        template,
        context,
        # HTMX does not swap 4xx/5xx responses: the partial carries its error state in a 200.
        status=200 if is_partial else (status or outcome.status),
    )
    if is_partial:
        query = outcome.query
        if template.endswith("#page"):
            # The list now runs from `start` to the end of these cards: a reload, or coming
            # back to this entry, shows all of them (the visitor's place).
            shown = query.offset + len(outcome.cards) - start
            response = replace_url(
                response, query.but(offset=start, shown=shown).url(reverse("home"))
            )
        elif (request.htmx.trigger or "").startswith(WEIGHT_INPUT_PREFIX):
            # A weight moved: the same search, weighed again, replaces its history entry (a
            # slider's every step is not a place to go back to).
            response = replace_url(response, query.url(reverse("home")))
        else:
            # The canonical URL (no empty parameters, no expired upload) goes into the history.
            response = push_url(response, query.url(reverse("home")))
    patch_vary_headers(response, ["HX-Request"])  # caches keep page and partial apart
    return response


def _partial_for(request: HtmxHttpRequest) -> str | None:
    """The partial an HTMX request's target names; None for a whole page (history restores
    included)."""
    if not request.htmx or request.htmx.history_restore_request:
        return None
    return PARTIALS.get(request.htmx.target or "", "search")


def _count(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
