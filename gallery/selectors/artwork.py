"""The artwork page: the artwork, the strip of similar ones, more by its artist, and (reached
from a result) its place in that search with the previous and the next result."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import F, Q
from django.urls import reverse

from gallery.models import Artwork
from gallery.query import SearchQuery
from gallery.selectors.cards import Card, card, item_card
from gallery.selectors.chips import resolved
from gallery.selectors.search import browse, friendly_error, page_size, retrieve
from search.filters import MAX_FILTER_CHARS
from search.retriever import RetrievalError, short_artist
from search.validation import text_problem

STRIP = 12  # cards in each strip
# Attributions that name no one: "more by" such an "artist" would be a list of strangers.
UNKNOWN_ARTISTS = frozenset({"unknown", "unknown artist", "anonymous", "unidentified artist"})


@dataclass(frozen=True)
class Neighbour:
    card: Card
    rank: int  # from 1, in the search it came from


@dataclass(frozen=True)
class ArtistStrip:
    """Other works by the artwork's artist (same name, details in parentheses aside)."""

    name: str
    cards: list[Card]

    @property
    def all_url(self) -> str:
        """The collection filtered by the artist (a substring filter: it may find a few more)."""
        return SearchQuery(artist=self.name).url(reverse("home"))


@dataclass
class ArtworkPage:
    artwork: Artwork
    similar: list[Card]
    similar_error: str
    description_credit: str
    by_artist: ArtistStrip | None = None  # None: the artist is unknown or has no other work
    search: SearchQuery | None = None  # the search the visitor came from, if any
    rank: int = 0
    previous: Neighbour | None = None
    next: Neighbour | None = None
    strip_query: SearchQuery = field(default_factory=SearchQuery)

    @property
    def similar_url(self) -> str:
        """Find similar to this artwork, keeping the tray of references the visitor gathered."""
        base = self.search or SearchQuery()
        refs = tuple(i for i in base.refs if i != self.artwork.pk)
        return SearchQuery(similar=self.artwork.pk, refs=refs).url(reverse("home"))

    @property
    def add_reference_url(self) -> str:
        """The search it came from with this artwork added to the tray ("" when it is there
        already, the tray is full, or the page was not reached from a search)."""
        search = self.search
        if search is None or self.artwork.pk in search.refs or search.similar == self.artwork.pk:
            return ""
        if len(search.refs) >= int(settings.SEARCH_MAX_REFERENCES):
            return ""
        return search.but(refs=(*search.refs, self.artwork.pk)).url(reverse("home"))

    @property
    def region_search_url(self) -> str:
        """The search a region of this artwork joins: the one the visitor came from, else none."""
        return (self.search or SearchQuery()).but().url(reverse("home"))

    @property
    def back_url(self) -> str:
        """The search it came from, showing enough results to include this one, scrolled to it."""
        if self.search is None:
            return reverse("home")
        size = page_size()
        pages = -(-self.rank // size)
        shown = pages * size if pages > 1 else 0
        url = self.search.but(shown=shown).url(reverse("home"))
        return f"{url}#result-{self.artwork.pk}"


def artwork_page(*, pk: int, search: SearchQuery | None, rank: int = 0) -> ArtworkPage | None:
    """The artwork, its similar strip, more by its artist, and (with the search it was reached
    from) its place in that search's results: the previous and the next one."""
    artwork = Artwork.objects.filter(pk=pk).first()
    if artwork is None:
        return None
    page = ArtworkPage(
        artwork=artwork,
        similar=[],
        similar_error="",
        description_credit=_description_credit(artwork),
        by_artist=artist_strip(artwork=artwork),
        strip_query=SearchQuery(similar=artwork.pk),
    )
    try:
        result = retrieve(query=page.strip_query, offset=0, limit=STRIP, image=None)
        page.similar = [item_card(item) for item in result.results]
    except RetrievalError as exc:
        page.similar_error = friendly_error(exc)
    if search is not None and not search.errors and rank > 0:
        page.search, page.rank = search, rank
        page.previous, page.next = _neighbours(query=search, rank=rank, artwork_id=artwork.pk)
    return page


def artist_strip(*, artwork: Artwork) -> ArtistStrip | None:
    """Up to STRIP other works whose artist has the same name, oldest first; None when the
    artist is unknown or has no other work here."""
    name = short_artist(artwork.artist)
    if not name or name.lower() in UNKNOWN_ARTISTS or len(name) > MAX_FILTER_CHARS:
        return None
    if text_problem(value=name, max_length=MAX_FILTER_CHARS):
        return None
    others = (
        # The substring test lets the trigram index on the artist find the few candidates.
        Artwork.objects.filter(artist__icontains=name)
        .filter(Q(artist=name) | Q(artist__startswith=f"{name} ("))
        .exclude(pk=artwork.pk)
        .order_by(F("begin_year").asc(nulls_last=True), "title", "id")
    )
    cards = [card(other) for other in others[:STRIP]]
    return ArtistStrip(name=name, cards=cards) if cards else None


def _neighbours(
    *, query: SearchQuery, rank: int, artwork_id: int
) -> tuple[Neighbour | None, Neighbour | None]:
    outcome, image = resolved(query=query)
    query = outcome.query
    start = max(rank - 2, 0)
    try:
        if query.has_inputs:
            result = retrieve(query=query, offset=start, limit=3, image=image)
            cards = [item_card(item) for item in result.results]
        else:
            cards, _ = browse(query=query, offset=start, limit=3)
    except RetrievalError:
        return None, None  # the artwork page stands without them
    ranked = {start + index + 1: card for index, card in enumerate(cards)}
    if ranked.get(rank) is None or ranked[rank].artwork_id != artwork_id:
        return None, None  # the ranking changed since the link was made
    before, after = ranked.get(rank - 1), ranked.get(rank + 1)
    return (
        Neighbour(card=before, rank=rank - 1) if before else None,
        Neighbour(card=after, rank=rank + 1) if after else None,
    )


def _description_credit(artwork: Artwork) -> str:
    if artwork.description and artwork.source == Artwork.Source.AIC:
        return "Description: Art Institute of Chicago, CC BY 4.0"
    return ""
