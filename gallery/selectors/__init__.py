"""What the pages show, as keyword-only typed reads for gallery/views.py (which only parses,
calls one of these, and renders):

- search.py: the search page (a search with its facets, or browsing the filtered collection);
- artwork.py: the artwork page (similar strip, more by the artist, previous and next result);
- outcome.py: what the search page shows of one search (cards, heading, chips, weights);
- chips.py: the query's non-text inputs resolved into chips, the tray and weight controls;
- cards.py: one artwork as every list shows it;
- explain.py: "why this result", in plain words.
"""

from gallery.selectors.artwork import ArtistStrip, ArtworkPage, Neighbour, artwork_page
from gallery.selectors.cards import Card
from gallery.selectors.outcome import WEIGHT_INPUT_PREFIX, Chip, SearchOutcome
from gallery.selectors.search import filter_choices, page_size, search_page
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
