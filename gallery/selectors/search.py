"""The search page: a search with the retriever (with facets and each hit's explanation), or
browsing the filtered collection when the query has no inputs, and the filter choices.

Beside the words and the filters a search may hold: one artwork to find similar ones, an upload
(a picture, or an example of what not to find), a region of a picture, a tray of references
("like these"), artworks marked "less like this", and a weight per search. Each is part of the
URL (gallery/query.py); the page shows each as a chip or in the tray, every card offers to add
its artwork to either side, and a weight control per search re-weights the fusion.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse
from PIL import Image

from gallery.models import Artwork, Collection
from gallery.query import (
    MAX_PAGE_WEIGHT,
    STATE_PARAMS,
    WEIGHT_PREFIX,
    WEIGHT_STEP,
    PageRegion,
    SearchQuery,
)
from gallery.selectors.cards import Card, card, item_card
from gallery.selectors.explain import explanation, search_label
from gallery.selectors.facets import FacetGroup, facet_groups
from gallery.uploads import upload_load, upload_preview
from search.config import max_page_size
from search.facets import Facets, facet_counts, fused_artwork_ids
from search.filters import filter_artworks
from search.retriever import (
    Filters,
    Region,
    RetrievalError,
    RetrievalInputs,
    RetrievalResult,
    SearchStats,
    execute_retriever,
)

WEIGHT_INPUT_PREFIX = "weight-"  # a weight control's id: the prefix, then its search's name


@dataclass(frozen=True)
class Crop:
    """A region of a picture drawn without a new image: an SVG whose viewBox is the box, in the
    picture's pixels (a strict Content-Security-Policy refuses inline styles)."""

    href: str
    width: int  # the picture's size in the SVG's units
    height: int
    view_box: str


@dataclass(frozen=True)
class Chip:
    """One non-text input of the query, shown as a removable chip."""

    kind: str  # "similar" | "upload" | "unlike" | "unlike-upload" | "region"
    label: str
    image_url: str
    remove_url: str
    link_url: str = ""
    less_url: str = ""  # the upload's "less like this" (it becomes a negative example)
    more_url: str = ""  # a negative upload made the picture to search by again
    crop: Crop | None = None  # a region's picture
    artwork_id: int | None = None
    title: str = ""  # the artwork's title, for a region of an artwork

    @property
    def negative(self) -> bool:
        return self.kind in {"unlike", "unlike-upload"}


@dataclass(frozen=True)
class TrayItem:
    """A reference in the tray: an artwork the search finds more like."""

    artwork_id: int
    label: str
    image_url: str
    link_url: str
    remove_url: str


@dataclass(frozen=True)
class WeightControl:
    """A range input for one search's weight (w.<name>)."""

    name: str
    label: str
    value: float
    negative: bool

    @property
    def field(self) -> str:
        return WEIGHT_PREFIX + self.name

    @property
    def input_id(self) -> str:
        return WEIGHT_INPUT_PREFIX + self.name.replace(":", "-")

    @property
    def shown(self) -> str:
        return f"{self.value:g}"


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
    tray: list[TrayItem] = field(default_factory=list)
    weights: list[WeightControl] = field(default_factory=list)
    titles: dict[int, str] = field(default_factory=dict)  # the query's artworks, by id
    facets: Facets | None = None  # searches only: counts over the whole fused list

    @property
    def max_references(self) -> int:
        return int(settings.SEARCH_MAX_REFERENCES)

    @property
    def tray_full(self) -> bool:
        return len(self.query.refs) >= self.max_references

    @property
    def max_weight(self) -> str:
        return f"{MAX_PAGE_WEIGHT:g}"

    @property
    def weight_step(self) -> str:
        return f"{WEIGHT_STEP:g}"

    @property
    def state_fields(self) -> list[tuple[str, str]]:
        """The inputs the search form carries unseen, so that new words keep them."""
        params = self.query.params()
        return [(name, params[name]) for name in STATE_PARAMS if name in params]

    @property
    def link_errors(self) -> list[str]:
        return [error.message for error in self.query.link_errors]

    @property
    def repair_url(self) -> str:
        """The search without what the link got wrong (the query has left it out)."""
        return self.query.url(reverse("home"))

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
        parts += [
            chip.label[:1].lower() + chip.label[1:] for chip in self.chips if chip.kind == "region"
        ]
        if len(self.tray) > 2:  # the tray shows them; a heading of six titles reads badly
            parts.append(f"like your {len(self.tray)} references")
        elif self.tray:
            parts.append("like " + _titles([item.label for item in self.tray]))
        unlike = [f"“{chip.label}”" for chip in self.chips if chip.kind == "unlike"]
        if any(chip.kind == "unlike-upload" for chip in self.chips):
            unlike.append("your image")
        if unlike and parts:
            parts.append("less like " + _titles(unlike, quoted=False))
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


def resolved(*, query: SearchQuery) -> tuple[SearchOutcome, bytes | None]:
    """The outcome with the chips and the tray of the query's non-text inputs, and the uploaded
    image's bytes (read once here and handed to the retriever); inputs that no longer exist
    become notices and leave the query."""
    outcome = SearchOutcome(query=query)
    upload = upload_load(upload_id=query.upload) if query.upload else None
    if query.upload and upload is None:
        outcome.notices.append("The uploaded image has expired; upload it again to search by it.")
        region = query.region if query.region and query.region.document_id else None
        query = query.but(
            upload="", unlike_upload=False, region=region, offset=query.offset, shown=query.shown
        )
    artworks = _artworks(query)
    outcome.titles = {pk: artwork.title or "Untitled" for pk, artwork in artworks.items()}
    missing = [pk for pk in _artwork_ids(query) if pk not in artworks]
    if missing:
        numbers = _titles([str(pk) for pk in missing], quoted=False)
        outcome.notices.append(
            f"There is no artwork {numbers} in the collection."
            if len(missing) == 1
            else f"There are no artworks {numbers} in the collection."
        )
        region = query.region
        if region is not None and region.document_id in missing:
            region = None
        query = query.but(
            similar=None if query.similar in missing else query.similar,
            refs=tuple(pk for pk in query.refs if pk not in missing),
            unlike=tuple(pk for pk in query.unlike if pk not in missing),
            region=region,
            offset=query.offset,
            shown=query.shown,
        )
    query = query.only_weights(active_searches(query))
    outcome.query = query
    home = reverse("home")
    if query.similar:
        reference = artworks[query.similar]
        outcome.chips.append(
            Chip(
                kind="similar",
                label=outcome.titles[reference.pk],
                image_url=reference.thumbnail.url if reference.thumbnail else "",
                remove_url=query.but(similar=None).url(home),
                link_url=reverse("artwork", args=[reference.pk]),
                artwork_id=reference.pk,
            )
        )
    region_of_upload = query.region is not None and query.region.document_id is None
    if query.upload and not query.unlike_upload and not region_of_upload:
        # (A region of the upload stands for it: the region's chip shows it.)
        outcome.chips.append(
            Chip(
                kind="upload",
                label="your image",
                image_url=reverse("upload-preview", args=[query.upload]),
                remove_url=query.but(upload="").url(home),
                less_url=query.but(unlike_upload=True).url(home),
            )
        )
    if query.region is not None:
        outcome.chips.append(_region_chip(query=query, artworks=artworks))
    for pk in query.unlike:
        artwork = artworks[pk]
        outcome.chips.append(
            Chip(
                kind="unlike",
                label=outcome.titles[pk],
                image_url=artwork.thumbnail.url if artwork.thumbnail else "",
                remove_url=query.but(unlike=tuple(i for i in query.unlike if i != pk)).url(home),
                link_url=reverse("artwork", args=[pk]),
                artwork_id=pk,
            )
        )
    if query.upload and query.unlike_upload:
        outcome.chips.append(
            Chip(
                kind="unlike-upload",
                label="your image",
                image_url=reverse("upload-preview", args=[query.upload]),
                remove_url=query.but(upload="", unlike_upload=False).url(home),
                more_url=query.but(unlike_upload=False).url(home),
            )
        )
    outcome.tray = [
        TrayItem(
            artwork_id=pk,
            label=outcome.titles[pk],
            image_url=artworks[pk].thumbnail.url if artworks[pk].thumbnail else "",
            link_url=reverse("artwork", args=[pk]),
            remove_url=query.but(refs=tuple(i for i in query.refs if i != pk)).url(home),
        )
        for pk in query.refs
    ]
    return outcome, upload.data if upload else None


def active_searches(query: SearchQuery) -> set[str]:
    """The names of the searches the query's inputs run (and the base names a weight may use
    for all of a kind): the only weights worth keeping in its URL."""
    names: set[str] = set()
    if query.q:
        names |= {"text", "keywords"}
    region_of_upload = query.region is not None and query.region.document_id is None
    if query.positive_upload and not region_of_upload:
        names.add("content")
    if query.similar:
        names.add("document")
    if query.refs:
        names |= {"reference", *(f"reference:{pk}" for pk in query.refs)}
    if query.region is not None:
        names.add("region")
    if query.unlike:
        names |= {"unlike", *(f"unlike:{pk}" for pk in query.unlike)}
    if query.upload and query.unlike_upload:
        names.add("unlike-image")
    return names


def weight_controls(
    *, searches: Sequence[SearchStats], titles: dict[int, str], references: Sequence[str]
) -> list[WeightControl]:
    """One control per search that ran, when there are several (one search alone gives the
    same order whatever its weight)."""
    if len(searches) < 2:
        return []
    return [
        WeightControl(
            name=search.name,
            label=search_label(search=search, titles=titles, references=references),
            value=search.weight,
            negative=search.polarity == "negative",
        )
        for search in searches
    ]


def _artwork_ids(query: SearchQuery) -> list[int]:
    ids = [query.similar] if query.similar else []
    ids += [*query.refs, *query.unlike]
    if query.region is not None and query.region.document_id:
        ids.append(query.region.document_id)
    return list(dict.fromkeys(ids))


def _artworks(query: SearchQuery) -> dict[int, Artwork]:
    ids = _artwork_ids(query)
    return Artwork.objects.in_bulk(ids) if ids else {}


def _region_chip(*, query: SearchQuery, artworks: dict[int, Artwork]) -> Chip:
    region = query.region
    assert region is not None
    home = reverse("home")
    if region.document_id:
        artwork = artworks[region.document_id]
        title = artwork.title or "Untitled"
        label = f"A region of “{title}”"
        href = artwork.image.url if artwork.image else ""
        size = (artwork.width or 0, artwork.height or 0)
        link = reverse("artwork", args=[artwork.pk])
    else:
        title, label = "", "A region of your image"
        href = reverse("upload-preview", args=[query.upload])
        size = _upload_size(query.upload)
        link = ""
    return Chip(
        kind="region",
        label=label,
        image_url=href,
        remove_url=query.but(region=None).url(home),
        link_url=link,
        crop=_crop(href=href, size=size, region=region) if href else None,
        artwork_id=region.document_id,
        title=title,
    )


def _crop(*, href: str, size: tuple[int, int], region: PageRegion) -> Crop:
    width, height = size if size[0] and size[1] else (1000, 1000)
    box = (region.x * width, region.y * height, region.width * width, region.height * height)
    return Crop(href=href, width=width, height=height, view_box=" ".join(f"{v:.2f}" for v in box))


def _upload_size(upload_id: str) -> tuple[int, int]:
    """The preview's size (the crop is drawn over it); (0, 0) when it cannot be read."""
    data = upload_preview(upload_id=upload_id)
    if not data:
        return 0, 0
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except OSError:
        return 0, 0


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


def _titles(names: Sequence[str], *, quoted: bool = True) -> str:
    """'“A”', '“A” and “B”', '“A”, “B” and “C”'."""
    shown = [f"“{name}”" if quoted else name for name in names]
    if len(shown) < 2:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


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
