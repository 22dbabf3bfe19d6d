"""Running a named retriever: inputs -> one search per input -> RRF -> a page of results.

    execute_retriever(name="default", inputs=RetrievalInputs(text="a storm at sea"))

By stage:
- inputs.py: what a retrieval is asked (text, image, document reference, keywords, more
  references, negative examples, a region);
- plan.py: the stored retriever and which of its searches run on which input;
- vectors.py: each search's query vector and the feature it is compared in;
- run.py: running the searches (database-only ones beside the encoder) and fusing by RRF;
- cache.py: the typed payloads kept in the result cache, and query-text vectors;
- results.py: the result type the API and the pages share, and hydrating a page of it;
- execute.py: `execute_retriever`, the one entry point, which strings them together.

Failures are RetrievalError subclasses (search/errors.py) carrying the HTTP status to answer.
Results degraded by an unavailable encoder are not cached: the model may be back next query.
"""

from search.errors import (
    BadImage,
    BadPagination,
    BadRegion,
    BadWeight,
    EncoderUnavailable,
    FeatureUnavailable,
    ImageTooLarge,
    MissingInput,
    NotEmbedded,
    NothingToSearch,
    RetrievalError,
    TextTooLong,
    TooManyReferences,
    TopKOutOfRange,
    UnknownArtwork,
    UnknownRetriever,
)
from search.filters import BadFilter, Filters
from search.retriever.execute import execute_retriever
from search.retriever.inputs import (
    DocRef,
    Region,
    RetrievalInputs,
    decode_base64_image,
    normalise_text,
)
from search.retriever.results import (
    ResultItem,
    RetrievalResult,
    SearchStats,
    StageStats,
    result_item,
    short_artist,
)
from search.retriever.run import IMAGE_SKIPPED_NOTICE, TEXT_FALLBACK_NOTICE
from search.retriever.vectors import MIN_REGION_PIXELS, QUERY_IMAGE_SIDE

__all__ = [
    "IMAGE_SKIPPED_NOTICE",
    "TEXT_FALLBACK_NOTICE",
    "QUERY_IMAGE_SIDE",
    "MIN_REGION_PIXELS",
    "BadFilter",
    "BadImage",
    "BadPagination",
    "BadRegion",
    "BadWeight",
    "DocRef",
    "EncoderUnavailable",
    "FeatureUnavailable",
    "Filters",
    "ImageTooLarge",
    "MissingInput",
    "NotEmbedded",
    "NothingToSearch",
    "Region",
    "ResultItem",
    "RetrievalError",
    "RetrievalInputs",
    "RetrievalResult",
    "SearchStats",
    "StageStats",
    "TextTooLong",
    "TooManyReferences",
    "TopKOutOfRange",
    "UnknownArtwork",
    "UnknownRetriever",
    "decode_base64_image",
    "execute_retriever",
    "normalise_text",
    "result_item",
    "short_artist",
]
