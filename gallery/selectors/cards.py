"""Cards: one artwork as every list on the pages shows it (search hits, browsing, the strips).

A card is the retriever's result item (search/retriever/results.py), the type the API returns
too, plus what only a page says: why a search ranked it. Templates show `label` (the title, or
"Untitled") and `alt`, the item's own presentation of its title and text alternative.
"""

from __future__ import annotations

from gallery.models import Artwork
from search.retriever import ResultItem, result_item


class Card(ResultItem):
    # Why a search ranked it where it is, in plain words (search hits only; see explain.py).
    why: tuple[str, ...] = ()
    # The search page's links for it: add it to the references (or take it out of them:
    # in_refs), mark it "less like this" (or take the mark off: in_unlike). Empty: not
    # offered (the tray is full, a strip...).
    ref_url: str = ""
    in_refs: bool = False
    less_url: str = ""
    in_unlike: bool = False


def card(artwork: Artwork) -> Card:
    """A browsed artwork's card: no score, no ranks."""
    return item_card(result_item(artwork))


def item_card(item: ResultItem, *, why: tuple[str, ...] = ()) -> Card:
    return Card(**dict(item), why=why)
