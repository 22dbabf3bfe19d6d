"""The search page: a search with the retriever (with facets and each hit's explanation), or
browsing the filtered collection when the query has no inputs, and the filter choices.

Beside the words and the filters a search may hold: one artwork to find similar ones, an upload
(a picture, or an example of what not to find), a region of a picture, a tray of references
("like these"), artworks marked "less like this", and a weight per search. Each is part of the
URL (gallery/query.py); the page shows each as a chip or in the tray, every card offers to add
its artwork to either side, and a weight control per search re-weights the fusion.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from gallery.models import Artwork, Collection
from gallery.query import SearchQuery
from gallery.selectors.cards import Card, card, item_card
from gallery.selectors.chips import resolved, weight_controls
from gallery.selectors.explain import explanation
from gallery.selectors.outcome import SearchOutcome
from search.config import max_page_size
from search.facets import facet_counts, fused_artwork_ids
from search.filters import filter_artworks
from search.retriever import (
    Filters,
    Region,
    RetrievalError,
    RetrievalInputs,
    RetrievalResult,
    execute_retriever,
)


def search_page(*, query: SearchQuery, with_facets: bool = True) -> SearchOutcome:
    """Search with the query's inputs, or browse the filtered collection when it has none.
    `with_facets`: count the facets of a search's whole list (a "Load more" page needs none)."""
    outcome, image = resolved(query=query)
    query = outcome.query
    if query.errors:
        outcome.mode = "search" if query.has_inputs else "browse"
        if query.link_errors and len(query.link_errors) == len(query.errors):
            outcome.error = "This link cannot be searched as it is; nothing was searched yet."
        else:
            outcome.error = "Check the fields marked above; nothing was searched yet."
        outcome.status = 422
        return outcome
    if query.negatives and not query.has_inputs:
        outcome.notices.append(
            "“Less like this” only pushes results down: add words, a picture or a reference "
            "to search with it. Meanwhile, the collection is shown."
        )
    limit = max(page_size(), query.shown)
    try:
        if query.has_inputs:
            outcome.mode = "search"
            result = retrieve(query=query, offset=query.offset, limit=limit, image=image)
            outcome.notices.extend(result.notices)  # e.g. the image model is unavailable
            references = [chip.label for chip in outcome.chips if chip.kind == "similar"]
            searches = [search for stage in result.stages for search in stage.searches]
            outcome.cards = [
                _with_actions(
                    item_card(
                        item,
                        why=explanation(
                            item=item,
                            searches=searches,
                            references=references,
                            titles=outcome.titles,
                        ),
                    ),
                    query=query,
                    search=True,
                )
                for item in result.results
            ]
            outcome.total = result.total
            outcome.timing = _timing_line(result)
            outcome.weights = weight_controls(
                searches=searches, titles=outcome.titles, references=references
            )
            if with_facets:
                ids = fused_artwork_ids(
                    inputs=_inputs(query=query, image=image),
                    filters=query_filters(query),
                    weights=query.weight_map or None,
                )
                outcome.facets = facet_counts(artwork_ids=ids)
        else:
            cards, outcome.total = browse(query=query, offset=query.offset, limit=limit)
            outcome.cards = [_with_actions(c, query=query, search=False) for c in cards]
    except RetrievalError as exc:
        outcome.error = friendly_error(exc)
        outcome.status = exc.status_code
    return outcome


def filter_choices() -> dict[str, list[tuple[str, str]]]:
    classifications = (
        Artwork.objects.exclude(classification="")
        .order_by("classification")
        .values_list("classification", flat=True)
        .distinct()
    )
    present = set(Artwork.objects.order_by().values_list("source", flat=True).distinct())
    collections = list(Collection.objects.order_by("name").values_list("name", flat=True))
    return {
        "classification": [(value, value) for value in classifications],
        # One collection (the default) is no choice at all: the control shows from two on.
        "collection": [(name, name) for name in collections] if len(collections) > 1 else [],
        "source": [(value, label) for value, label in Artwork.Source.choices if value in present],
    }


def page_size() -> int:
    return int(settings.GALLERY_PAGE_SIZE)


def _with_actions(item: Card, *, query: SearchQuery, search: bool) -> Card:
    """The card with its "less like this" (searches only) and reference toggles."""
    home = reverse("home")
    pk = item.artwork_id
    most = int(settings.SEARCH_MAX_REFERENCES)
    changes: dict[str, object] = {"in_refs": pk in query.refs}
    if pk in query.refs:
        changes["ref_url"] = query.but(refs=tuple(i for i in query.refs if i != pk)).url(home)
    elif len(query.refs) < most and pk != query.similar:
        changes["ref_url"] = query.but(
            refs=(*query.refs, pk), unlike=tuple(i for i in query.unlike if i != pk)
        ).url(home)
    if pk in query.unlike:
        changes["in_unlike"] = True
        changes["less_url"] = query.but(unlike=tuple(i for i in query.unlike if i != pk)).url(home)
    elif search and len(query.unlike) < most:
        changes["less_url"] = query.but(
            unlike=(*query.unlike, pk), refs=tuple(i for i in query.refs if i != pk)
        ).url(home)
    return item.model_copy(update=changes)


def retrieve(
    *, query: SearchQuery, offset: int, limit: int, image: bytes | None
) -> RetrievalResult:
    """The ranking's [offset, offset + limit), in requests the retriever accepts."""
    step = max_page_size()
    inputs = _inputs(query=query, image=image)
    filters = query_filters(query)
    weights = query.weight_map or None
    result = execute_retriever(
        inputs=inputs, filters=filters, offset=offset, limit=min(limit, step), weights=weights
    )
    items = list(result.results)
    while len(items) < limit and offset + len(items) < result.total:
        more = execute_retriever(
            inputs=inputs,
            filters=filters,
            offset=offset + len(items),
            limit=min(limit - len(items), step),
            weights=weights,
        )
        if not more.results:
            break
        items += more.results
    if len(items) == len(result.results):
        return result
    return result.model_copy(update={"results": items, "offset": offset, "limit": limit})


def browse(*, query: SearchQuery, offset: int, limit: int) -> tuple[list[Card], int]:
    filters = query_filters(query)
    filters.validate()
    artworks = filter_artworks(Artwork.objects.all(), filters).order_by("title", "id")
    return [card(artwork) for artwork in artworks[offset : offset + limit]], artworks.count()


def query_filters(query: SearchQuery) -> Filters:
    return Filters(
        classification=query.classification,
        artist=query.artist,
        year_from=query.year_from,
        year_to=query.year_to,
        source=query.source,
        collection=query.collection,
    )


def friendly_error(exc: RetrievalError) -> str:
    if exc.status_code == 409:
        return (
            "This search cannot run yet: the artworks have not all been indexed. "
            "Try again in a little while."
        )
    return getattr(exc, "message", "") or str(exc)


def _inputs(*, query: SearchQuery, image: bytes | None) -> RetrievalInputs:
    region = query.region
    return RetrievalInputs(
        text=query.q,
        image=None if query.unlike_upload else image,
        document_id=query.similar,
        references=query.refs,
        negatives=query.unlike,
        negative_image=image if query.unlike_upload else None,
        region=(
            Region(
                x=region.x,
                y=region.y,
                width=region.width,
                height=region.height,
                document_id=region.document_id,
            )
            if region is not None
            else None
        ),
    )


def _timing_line(result: RetrievalResult) -> list[str]:
    """Discreet per-stage timing: 'text: encode 80 ms, kNN 9 ms · rrf of 2 · 95 ms in all'."""
    parts: list[str] = []
    for stage in result.stages:
        for search in stage.searches:
            encode = (
                "cached vector" if search.vector_cached else f"encode {search.encode_ms:.0f} ms"
            )
            if search.list_cached:
                parts.append(f"{search.name}: cached list")
            elif search.input_mode in {"document", "keywords"}:
                parts.append(f"{search.name}: {search.knn_ms:.0f} ms")
            else:
                parts.append(f"{search.name}: {encode}, kNN {search.knn_ms:.0f} ms")
        if stage.searches_run > 1:
            parts.append(f"{stage.fusion_strategy} of {stage.searches_run}")
    if result.cache_hit:
        # The searches' figures are those of the run that filled the cache.
        return [f"from the cache in {result.duration_ms:.0f} ms (computed: {' · '.join(parts)})"]
    parts.append(f"{result.duration_ms:.0f} ms in all")
    return parts
