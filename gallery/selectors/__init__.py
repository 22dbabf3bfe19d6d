"""What the pages show, as keyword-only typed reads for gallery/views.py (which only parses,
calls one of these, and renders):

- search.py: the search page (a search with its facets, or browsing the filtered collection);
- artwork.py: the artwork page (similar strip, more by the artist, previous and next result);
- cards.py: one artwork as every list shows it;
- explain.py: "why this result", in plain words.
"""

from gallery.selectors.artwork import ArtistStrip, ArtworkPage, Neighbour, artwork_page
from gallery.selectors.cards import Card
from gallery.selectors.search import (
    WEIGHT_INPUT_PREFIX,
    Chip,
    SearchOutcome,
    filter_choices,
    page_size,
    search_page,
)
from search.retriever import short_artist

__all__ = [
    "WEIGHT_INPUT_PREFIX",
    "ArtistStrip",
    "ArtworkPage",
    "Card",
    "Chip",
    "Neighbour",
    "SearchOutcome",
    "artwork_page",
    "filter_choices",
    "page_size",
    "search_page",
    "short_artist",
]
