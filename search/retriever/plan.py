"""Planning: the stored retriever, and which of its searches run on which input.

Each search of the retriever's feature_search stage (search/config.py) maps its input through a
template; a search whose input is empty is skipped (on_empty = "skip"), and when every search is
skipped the caller gets `NothingToSearch`. A document reference names the artwork (and, in its
object form, the collection it must belong to); {{INPUT.references}} and {{INPUT.negatives}}
plan one search per artwork, named "<name>:<artwork id>". A region of the upload stands for the
whole picture: with a region search planned, the whole-image content search is not.

Each planned search carries the weight it is fused with: the configured one, or the query's
`weights` by the search's reported name ("reference:17") or by its configured name
("reference", every expansion of it); the reported name wins.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from gallery.images import sha256_bytes, too_many_bytes
from search.config import (
    COLLECTION_TEMPLATE,
    DOCUMENT_TEMPLATES,
    EXPANSION_SEPARATOR,
    MAX_WEIGHT,
    ConfigError,
    DocumentRef,
    RetrieverConfig,
    Search,
    max_text_chars,
    parse_config,
    template_name,
)
from search.errors import (
    BadRegion,
    BadRetrieverConfig,
    BadWeight,
    ImageTooLarge,
    MissingInput,
    NothingToSearch,
    TextTooLong,
    TooManyReferences,
    UnknownRetriever,
)
from search.models import Retriever
from search.retriever.inputs import DocRef, Region, RetrievalInputs, normalise_text


@dataclass(frozen=True)
class StoredRetriever:
    version: int  # the collection version, read with the configuration
    config_text: str | None  # the configuration as JSON text; None: no such retriever


@dataclass(frozen=True)
class PlannedSearch:
    """One search with its input resolved."""

    search: Search
    mode: str
    text: str = ""  # text / keywords, normalised
    image: bytes | None = None  # an upload (whole, or the picture a region of it is cut from)
    document_id: int | None = None  # the artwork searched by, or whose region is cropped
    collection: str = ""  # the document's collection, when the reference names one
    top_k: int = 0
    label: str = ""  # the reported name when it differs from the search's ("reference:17")
    weight: float | None = None  # the query's weight for it; None: the configured one
    region: Region | None = None  # crop `image`, or the artwork document_id's original

    @property
    def name(self) -> str:
        """The name its rank is reported and weighted under."""
        return self.label or self.search.label

    @property
    def polarity(self) -> str:
        return self.search.polarity

    @property
    def applied_weight(self) -> float:
        return self.search.weight if self.weight is None else self.weight

    def list_key(self) -> dict[str, Any]:
        """What identifies this search's ranked list (with the filters and the collection
        version): its input, not its name, polarity or weight, so re-weighting reuses it."""
        return {
            "mode": self.mode,
            "feature": self.search.feature_ref,
            "collection": self.collection,
            "text": self.text,
            "image": sha256_bytes(self.image) if self.image is not None else None,
            "document_id": self.document_id,
            "region": self.region.box() if self.region is not None else None,
            "top_k": self.top_k,
            # A negative document search's list holds its own artwork, a positive one's not.
            "holds_itself": self.mode == "document" and self.polarity == "negative",
        }

    def key(self) -> dict[str, Any]:
        """What identifies this search's part in a fused list: its list, name, polarity and
        the weight applied."""
        return {
            **self.list_key(),
            "name": self.name,
            "polarity": self.polarity,
            "weight": self.applied_weight,
        }


def stored_retriever(*, name: str) -> StoredRetriever:
    """The collection version and the configuration of the retriever named `name`, or else
    numbered `name`, in one round trip. Read the version BEFORE searching and key the result
    with it: a write committed after the read gives later readers a newer version (so they
    miss), and a write not yet committed when the searches ran is invisible to them and still
    bumps the version on commit."""
    number = int(name) if name.isdigit() and len(name) < 19 else None  # within bigint
    with connection.cursor() as cur:
        cur.execute(
            "SELECT (SELECT version FROM search_collection_version WHERE id = 1),"
            f" (SELECT config FROM {Retriever._meta.db_table} WHERE name = %s OR id = %s"
            "   ORDER BY name = %s DESC LIMIT 1)",
            [name, number, name],
        )
        version, config = cur.fetchone()
    if config is not None and not isinstance(config, str):  # a driver that decodes jsonb
        config = json.dumps(config, sort_keys=True)
    return StoredRetriever(version=int(version or 0), config_text=config)


def retriever_config(*, name: str, stored: StoredRetriever) -> RetrieverConfig:
    """The parsed configuration: UnknownRetriever when there is none, BadRetrieverConfig when
    the stored one no longer validates (edited in the database directly)."""
    if stored.config_text is None:
        raise UnknownRetriever(f"There is no retriever named {name!r} (nor with that id).")
    try:
        return _parsed(stored.config_text)
    except ConfigError as exc:
        raise BadRetrieverConfig(f"The retriever {name!r} is misconfigured: {exc}") from exc


# Validating a configuration costs more than the whole cache hit it precedes. Keyed on the text
# itself, so an edited retriever is parsed anew at once; a handful of retrievers fit.
@functools.lru_cache(maxsize=64)
def _parsed(config_text: str) -> RetrieverConfig:
    return parse_config(json.loads(config_text))


def plan_searches(
    *,
    config: RetrieverConfig,
    inputs: RetrievalInputs,
    top_k: int | None,
    weights: Mapping[str, float] | None = None,
) -> list[PlannedSearch]:
    """The searches that run, in the configuration's order (an expanded search's artworks in
    the order given); `top_k` replaces each one's, `weights` their weights (see above)."""
    check_inputs(inputs)
    searches = config.parameters.searches
    check_weights(searches=searches, weights=weights or {})
    # A region of the upload stands for the picture when this retriever searches regions.
    region_replaces_image = (
        inputs.region is not None
        and inputs.region.document_id is None
        and any(s.source == "region" for s in searches)
    )
    plan: list[PlannedSearch] = []
    for search in searches:
        if search.source == "image" and region_replaces_image:
            continue
        planned = _resolve(search, inputs, top_k or search.top_k)
        if not planned:
            if search.on_empty == "error":
                raise MissingInput(f"The search {search.label!r} needs an input.")
            continue
        plan += [_weighted(p, weights or {}) for p in planned]
    if not any(p.polarity == "positive" for p in plan):
        keywords = any(s.query.input_mode == "keywords" for s in searches)
        raise NothingToSearch(
            "Nothing to search: give a text, an image or an artwork to find similar ones"
            + (", or keywords" if keywords else "")
            + (" (examples of what not to find only demote results)" if plan else "")
            + "."
        )
    return plan


def check_inputs(inputs: RetrievalInputs) -> None:
    """TooManyReferences / BadRegion for inputs wrong whatever the retriever."""
    most = int(settings.SEARCH_MAX_REFERENCES)
    for what, ids in (("reference", inputs.references), ("negative", inputs.negatives)):
        if len(set(ids)) > most:
            raise TooManyReferences(
                f"{len(set(ids))} {what} artworks were given; at most {most} are searched at once."
            )
    region = inputs.region
    if region is None:
        return
    parts = {"x": region.x, "y": region.y, "width": region.width, "height": region.height}
    for part, value in parts.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise BadRegion(f"The region's {part} must be a finite number between 0 and 1.")
    slack = 1e-9  # x + width computed in floating point may pass 1 by a rounding error
    if not (
        0 <= region.x < 1
        and 0 <= region.y < 1
        and 0 < region.width <= 1
        and 0 < region.height <= 1
        and region.x + region.width <= 1 + slack
        and region.y + region.height <= 1 + slack
    ):
        raise BadRegion(
            "The region must lie inside the picture: x, y ≥ 0, width and height > 0, "
            f"x + width ≤ 1 and y + height ≤ 1 (got x={region.x:g}, y={region.y:g}, "
            f"width={region.width:g}, height={region.height:g})."
        )
    if region.document_id is None and not inputs.image:
        raise BadRegion("A region of the uploaded image needs the image: upload it too.")


def search_names(searches: list[Search]) -> list[str]:
    """The names a query's weights may use: each search's, and "<name>:<artwork id>" for the
    searches that expand."""
    return [
        f"{s.label}, {s.label}{EXPANSION_SEPARATOR}<artwork id>" if s.expands else s.label
        for s in searches
    ]


def check_weights(*, searches: list[Search], weights: Mapping[str, float]) -> None:
    """BadWeight unless each weight is a finite number in [0, MAX_WEIGHT] named after a search
    of this retriever."""
    labels = {s.label for s in searches}
    expanding = {s.label for s in searches if s.expands}
    for name, value in weights.items():
        base, separator, rest = str(name).partition(EXPANSION_SEPARATOR)
        known = name in labels or (
            separator and base in expanding and rest.isascii() and rest.isdigit()
        )
        if not known:
            raise BadWeight(
                f"No search of this retriever is named {name!r}; weights may name: "
                + "; ".join(search_names(searches))
                + "."
            )
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or not 0 <= number <= MAX_WEIGHT:
            raise BadWeight(
                f"The weight of {name!r} must be a number from 0 to {MAX_WEIGHT:g}; got {value!r}."
            )


def _weighted(planned: PlannedSearch, weights: Mapping[str, float]) -> PlannedSearch:
    for name in (planned.name, planned.search.label):  # the reported name wins
        if name in weights:
            return dataclasses.replace(planned, weight=float(weights[name]))
    return planned


def _resolve(search: Search, inputs: RetrievalInputs, top_k: int) -> list[PlannedSearch]:
    """The searches `search` plans for these inputs: none when its input is empty, one per
    artwork when it expands."""
    query = search.query
    mode = query.input_mode
    if mode == "document":
        if search.expands:
            ids = inputs.references if search.source == "references" else inputs.negatives
            return [
                PlannedSearch(
                    search=search,
                    mode=mode,
                    document_id=artwork_id,
                    top_k=top_k,
                    label=f"{search.label}{EXPANSION_SEPARATOR}{artwork_id}",
                )
                for artwork_id in dict.fromkeys(ids)  # the first mention, in order
            ]
        document_id, collection = _document_ref(query.document_ref, inputs)
        if document_id is None:
            return []
        return [
            PlannedSearch(
                search=search,
                mode=mode,
                document_id=document_id,
                collection=collection,
                top_k=top_k,
            )
        ]
    assert query.value is not None  # the schema guarantees it for the other modes
    if mode == "content":
        return _content(search, inputs, top_k)
    source = template_name(query.value)
    raw = {"text": inputs.text, "keywords": inputs.keywords}.get(source or "", query.value)
    text = normalise_text(raw or "")
    if not text:
        return []
    if len(text) > max_text_chars():
        raise TextTooLong(
            f"The {'text' if mode == 'text' else 'keywords'} is {len(text)} characters long; "
            f"the limit is {max_text_chars()}."
        )
    return [PlannedSearch(search=search, mode=mode, text=text, top_k=top_k)]


def _content(search: Search, inputs: RetrievalInputs, top_k: int) -> list[PlannedSearch]:
    """An image search: the upload, a region's crop, or the negative example's upload."""
    region = inputs.region if search.source == "region" else None
    if search.source == "region":
        if region is None:
            return []
        image = inputs.image if region.document_id is None else None
    else:
        image = inputs.negative_image if search.source == "negative_image" else inputs.image
        if not image:
            return []
    if image is not None:
        limit = settings.GALLERY_MAX_UPLOAD_BYTES
        if len(image) > limit:
            raise ImageTooLarge(too_many_bytes(size=len(image), limit=limit))
    return [
        PlannedSearch(
            search=search,
            mode="content",
            image=image,
            document_id=region.document_id if region is not None else None,
            region=region,
            top_k=top_k,
        )
    ]


def _document_ref(
    ref: str | int | DocumentRef | None, inputs: RetrievalInputs
) -> tuple[int | None, str]:
    """(artwork id or None when the input is empty, collection name/id or "")."""
    given = inputs.document()
    if isinstance(ref, DocumentRef):
        document_id = _document_id(ref.document_id, given)
        collection = ref.collection_id
        if isinstance(collection, str) and template_name(collection) == COLLECTION_TEMPLATE:
            collection = given.collection_id
        return document_id, str(collection or "").strip()
    return _document_id(ref, given), ""


def _document_id(ref: str | int | None, given: DocRef) -> int | None:
    if isinstance(ref, str) and template_name(ref) in DOCUMENT_TEMPLATES:
        return given.document_id
    return None if ref is None else int(str(ref).strip())
