"""Planning: the stored retriever, and which of its searches run on which input.

Each search of the retriever's feature_search stage (search/config.py) maps its input through a
template; a search whose input is empty is skipped (on_empty = "skip"), and when every search is
skipped the caller gets `NothingToSearch`. A document reference names the artwork (and, in its
object form, the collection it must belong to).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from gallery.images import sha256_bytes, too_many_bytes
from search.config import (
    COLLECTION_TEMPLATE,
    DOCUMENT_TEMPLATES,
    ConfigError,
    DocumentRef,
    RetrieverConfig,
    Search,
    max_text_chars,
    parse_config,
    template_name,
)
from search.errors import (
    BadRetrieverConfig,
    ImageTooLarge,
    MissingInput,
    NothingToSearch,
    TextTooLong,
    UnknownRetriever,
)
from search.models import Retriever
from search.retriever.inputs import DocRef, RetrievalInputs, normalise_text


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
    image: bytes | None = None
    document_id: int | None = None
    collection: str = ""  # the document's collection, when the reference names one
    top_k: int = 0

    def key(self) -> dict[str, Any]:
        """What identifies this search's outcome in the result cache."""
        return {
            "name": self.search.label,
            "mode": self.mode,
            "feature": self.search.feature_ref,
            "collection": self.collection,
            "text": self.text,
            "image": sha256_bytes(self.image) if self.image is not None else None,
            "document_id": self.document_id,
            "top_k": self.top_k,
            "weight": self.search.weight,
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
    *, config: RetrieverConfig, inputs: RetrievalInputs, top_k: int | None
) -> list[PlannedSearch]:
    """The searches that run, in the configuration's order; `top_k` replaces each one's."""
    plan: list[PlannedSearch] = []
    for search in config.parameters.searches:
        planned = _resolve(search, inputs, top_k or search.top_k)
        if planned is None:
            if search.on_empty == "error":
                raise MissingInput(f"The search {search.label!r} needs an input.")
            continue
        plan.append(planned)
    if not plan:
        keywords = any(s.query.input_mode == "keywords" for s in config.parameters.searches)
        raise NothingToSearch(
            "Nothing to search: give a text, an image or an artwork to find similar ones"
            + (", or keywords" if keywords else "")
            + "."
        )
    return plan


def _resolve(search: Search, inputs: RetrievalInputs, top_k: int) -> PlannedSearch | None:
    query = search.query
    mode = query.input_mode
    if mode == "document":
        document_id, collection = _document_ref(query.document_ref, inputs)
        if document_id is None:
            return None
        return PlannedSearch(
            search=search, mode=mode, document_id=document_id, collection=collection, top_k=top_k
        )
    assert query.value is not None  # the schema guarantees it for the other modes
    if mode == "content":
        if not inputs.image:
            return None
        limit = settings.GALLERY_MAX_UPLOAD_BYTES
        if len(inputs.image) > limit:
            raise ImageTooLarge(too_many_bytes(size=len(inputs.image), limit=limit))
        return PlannedSearch(search=search, mode=mode, image=inputs.image, top_k=top_k)
    source = template_name(query.value)
    raw = {"text": inputs.text, "keywords": inputs.keywords}.get(source or "", query.value)
    text = normalise_text(raw or "")
    if not text:
        return None
    if len(text) > max_text_chars():
        raise TextTooLong(
            f"The {'text' if mode == 'text' else 'keywords'} is {len(text)} characters long; "
            f"the limit is {max_text_chars()}."
        )
    return PlannedSearch(search=search, mode=mode, text=text, top_k=top_k)


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
