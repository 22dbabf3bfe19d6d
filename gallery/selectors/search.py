"""The search page: a search with the retriever (with facets and each hit's explanation), or
browsing the filtered collection when the query has no inputs, and the filter choices."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse

from gallery.models import Artwork, Collection
from gallery.query import SearchQuery
from gallery.selectors.cards import Card, card, item_card
from gallery.selectors.explain import explanation
from gallery.selectors.facets import FacetGroup, facet_groups
from gallery.uploads import upload_load
from search.config import max_page_size
from search.facets import Facets, facet_counts, fused_artwork_ids
from search.filters import filter_artworks
from search.retriever import (
    Filters,
    RetrievalError,
    RetrievalInputs,
    RetrievalResult,
    execute_retriever,
)


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
    facets: Facets | None = None  # searches only: counts over the whole fused list

    @property
    def facet_groups(self) -> list[FacetGroup]:
        if self.facets is None or self.error or not self.cards:
            return []
        return facet_groups(facets=self.facets, query=self.query)

    @property
    def facets_open(self) -> bool:
        """The facets start open when the page is filtered by one of them."""
        return any(link.active for group in self.facet_groups for link in group.links)

    @property
    def next_offset(self) -> int | None:
        following = self.query.offset + len(self.cards)
        return following if self.cards and following < self.total else None

    @property
    def past_end(self) -> bool:
        """A page that starts after the last result (a stale or hand-edited link)."""
        return not self.error and not self.cards and 0 < self.total <= self.query.offset

    @property
    def described(self) -> str:
        """What was searched with, as the heading and title repeat it: 'for “apples”, like
        “Mère Grégoire”'."""
        parts = [f"for “{self.query.q}”"] if self.query.q else []
        parts += [f"like “{chip.label}”" for chip in self.chips if chip.kind == "similar"]
        parts += ["like your image" for chip in self.chips if chip.kind == "upload"]
        return ", ".join(parts)

    @property
    def title(self) -> str:
        """What the document title says about this search: '“apples”', 'Like “Mère Grégoire”'."""
        described = self.described.removeprefix("for ")
        if described:
            return described[0].upper() + described[1:]
        return "The collection, filtered" if self.query.active_filter_count else "The collection"


def search_page(*, query: SearchQuery, with_facets: bool = True) -> SearchOutcome:
    """Search with the query's inputs, or browse the filtered collection when it has none.
    `with_facets`: count the facets of a search's whole list (a "Load more" page needs none)."""
    outcome, image = resolved(query=query)
    query = outcome.query
    if query.errors:
        outcome.mode = "search" if query.has_inputs else "browse"
        outcome.error = "Check the fields marked above; nothing was searched yet."
        outcome.status = 422
        return outcome
    limit = max(page_size(), query.shown)
    try:
        if query.has_inputs:
            outcome.mode = "search"
            result = retrieve(query=query, offset=query.offset, limit=limit, image=image)
            outcome.notices.extend(result.notices)  # e.g. the image model is unavailable
            references = [chip.label for chip in outcome.chips if chip.kind == "similar"]
            searches = [search for stage in result.stages for search in stage.searches]
            outcome.cards = [
                item_card(
                    item, why=explanation(item=item, searches=searches, references=references)
                )
                for item in result.results
            ]
            outcome.total = result.total
            outcome.timing = _timing_line(result)
            if with_facets:
                ids = fused_artwork_ids(
                    inputs=_inputs(query=query, image=image), filters=query_filters(query)
                )
                outcome.facets = facet_counts(artwork_ids=ids)
        else:
            outcome.cards, outcome.total = browse(query=query, offset=query.offset, limit=limit)
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


def resolved(*, query: SearchQuery) -> tuple[SearchOutcome, bytes | None]:
    """The outcome with the chips of the query's non-text inputs, and the uploaded image's
    bytes (read once here and handed to the retriever); inputs that no longer exist become
    notices and leave the query."""
    outcome = SearchOutcome(query=query)
    upload = upload_load(upload_id=query.upload) if query.upload else None
    if query.upload and upload is None:
        outcome.notices.append("The uploaded image has expired; upload it again to search by it.")
        query = outcome.query = query.but(upload="", offset=query.offset, shown=query.shown)
    if query.similar:
        reference = Artwork.objects.filter(pk=query.similar).first()
        if reference is None:
            outcome.notices.append(f"There is no artwork {query.similar} in the collection.")
            query = outcome.query = query.but(similar=None, offset=query.offset, shown=query.shown)
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
    return outcome, upload.data if upload else None


def retrieve(
    *, query: SearchQuery, offset: int, limit: int, image: bytes | None
) -> RetrievalResult:
    """The ranking's [offset, offset + limit), in requests the retriever accepts."""
    step = max_page_size()
    inputs = _inputs(query=query, image=image)
    filters = query_filters(query)
    result = execute_retriever(
        inputs=inputs, filters=filters, offset=offset, limit=min(limit, step)
    )
    items = list(result.results)
    while len(items) < limit and offset + len(items) < result.total:
        more = execute_retriever(
            inputs=inputs,
            filters=filters,
            offset=offset + len(items),
            limit=min(limit - len(items), step),
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
    return RetrievalInputs(text=query.q, image=image, document_id=query.similar)


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
        if stage.searches_run > 1:
            parts.append(f"{stage.fusion_strategy} of {stage.searches_run}")
    if result.cache_hit:
        # The searches' figures are those of the run that filled the cache.
        return [f"from the cache in {result.duration_ms:.0f} ms (computed: {' · '.join(parts)})"]
    parts.append(f"{result.duration_ms:.0f} ms in all")
    return parts
