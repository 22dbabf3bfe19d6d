"""What a retrieval returns: one result type for the API's schema and the pages alike.

The models are pydantic so that the API's response schema derives from them (search/schemas.py)
and the pages render the same objects (gallery/selectors.py); descriptions here are the API's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gallery.models import Artwork
from search.fusion import Fused

UNTITLED = "Untitled"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ResultItem(_Frozen):
    """One artwork in a list: a search hit (with its fused score and ranks) or a browsed one."""

    artwork_id: int
    title: str
    artist: str
    display_date: str
    thumbnail_url: str
    width: int | None
    height: int | None
    alt_text: Annotated[
        str, Field(description="The thumbnail's curated text alternative; empty when none.")
    ]
    score: Annotated[float, Field(description="The fused RRF score; 0 when browsing.")]
    ranks: Annotated[
        dict[str, int],
        Field(
            description="Each search's rank (from 1) for this artwork, negative searches "
            "(which lower the score) included."
        ),
    ]

    @property
    def label(self) -> str:
        """The title as a page shows it."""
        return self.title or UNTITLED

    @property
    def alt(self) -> str:
        """The thumbnail's text alternative as a page gives it: the curated one, else what the
        card says (title and artist)."""
        if self.alt_text:
            return self.alt_text
        return f"{self.label}, by {short_artist(self.artist)}" if self.artist else self.label


def short_artist(artist: str) -> str:
    """'Claude Monet (French, 1840–1926)' -> 'Claude Monet' (for alt text and labels)."""
    return artist.split(" (", 1)[0].strip() or artist


class SearchStats(_Frozen):
    name: Annotated[
        str,
        Field(description='The name its ranks are reported under, e.g. "text", "reference:17".'),
    ]
    input_mode: str
    feature: str
    top_k: int
    encode_ms: float
    knn_ms: float
    returned: int
    vector_cached: Annotated[
        bool, Field(description="The query vector (a text's or a region's) came from the cache.")
    ]
    fallback: Annotated[
        str,
        Field(
            description='"keywords" when the encoder was unavailable and the text was searched '
            "by keywords instead; empty otherwise."
        ),
    ] = ""
    polarity: Annotated[
        Literal["positive", "negative"],
        Field(description='"negative": an example of what not to find; its ranks subtract.'),
    ] = "positive"
    weight: Annotated[float, Field(description="The weight this search was fused with.")] = 1.0
    document_id: Annotated[
        int | None,
        Field(
            description="The artwork it searched by (a reference, a negative example, or the "
            "artwork a region was cut from); null otherwise."
        ),
    ] = None
    list_cached: Annotated[
        bool,
        Field(
            description="Its ranked list came from the cache (nothing was encoded or searched "
            "again: e.g. only the weights changed)."
        ),
    ] = False


class StageStats(_Frozen):
    stage_name: str
    num_features: Annotated[
        int, Field(description="The searches the stage configures, whether they ran or not.")
    ]
    searches_run: Annotated[
        int, Field(description="The searches that ran: those given an input, less any skipped.")
    ]
    fusion_strategy: str
    total_results: int
    duration_ms: float
    cache_hit: bool
    searches: list[SearchStats]


class RetrievalResult(_Frozen):
    results: list[ResultItem]
    total: int
    offset: int
    limit: int
    stages: list[StageStats]
    cache_hit: bool
    duration_ms: float
    notices: Annotated[
        list[str],
        Field(
            description="Things to tell the person, e.g. that the image model is unavailable "
            "and keyword matches are shown instead."
        ),
    ] = []


# The columns a result item reads: hydrating a page fetches only these.
ITEM_FIELDS = ("id", "title", "artist", "display_date", "thumbnail", "width", "height", "alt_text")


def result_item(
    artwork: Artwork, *, score: float = 0.0, ranks: dict[str, int] | None = None
) -> ResultItem:
    return ResultItem(
        artwork_id=artwork.pk,
        title=artwork.title,
        artist=artwork.artist,
        display_date=artwork.display_date,
        thumbnail_url=artwork.thumbnail.url if artwork.thumbnail else "",
        width=artwork.width,
        height=artwork.height,
        alt_text=artwork.alt_text,
        score=round(float(score), 8),
        ranks=dict(ranks or {}),
    )


def hydrate(page: Sequence[Fused[int]]) -> list[ResultItem]:
    """The page's artworks as result items, in its order, in one query."""
    artworks = Artwork.objects.only(*ITEM_FIELDS).in_bulk([fused.item for fused in page])
    return [
        result_item(artworks[fused.item], score=fused.score, ranks=fused.ranks)
        for fused in page
        # One deleted since: the collection version changed, so the next query will not see it.
        if fused.item in artworks
    ]
