"""The retriever configuration: its schema, its validation, and the settings retrieval reads.

A configuration is JSON (`default_config` below builds the default retrievers'), e.g.

    {"stage_id": "feature_search", "parameters": {
      "searches": [
        {"feature": "active", "query": {"input_mode": "text", "value": "{{INPUT.text}}"}},
        {"query": {"input_mode": "keywords", "value": "{{INPUT.keywords}}"}, "top_k": 100}],
      "final_top_k": 500, "fusion": {"strategy": "rrf", "k": 60}}}

- `feature` is "active" (the feature that is active when the query runs, so activating a new
  model needs no edit of any retriever) or a feature's name; or, instead, `feature_uri` names a
  collection's feature (`mixpeek://image_extractor@v1/google_siglip_base_v1`,
  search/feature_uris.py; checked against the collections when the retriever is saved).
  Keyword searches need neither.
- Values are templates `{{INPUT.text}}`, `{{INPUT.image}}`, `{{INPUT.document_id}}`,
  `{{INPUT.keywords}}`, or a literal (a fixed text, keywords or artwork id; images are always
  inputs). A document reference is a template or artwork id, or an object
  {"collection_id": "{{INPUT.doc_ref.collection_id}}", "document_id":
  "{{INPUT.doc_ref.document_id}}"} (either part may also be a literal).
- Several artworks at once: a document reference `{{INPUT.references}}` or
  `{{INPUT.negatives}}` expands into one document search per artwork given, each reported as
  "<name>:<artwork id>" (e.g. "reference:17"). A content search's value may also be
  `{{INPUT.region}}` (the crop of a region of the upload or of a stored artwork) or
  `{{INPUT.negative_image}}` (an upload given as a negative example).
- `polarity`: "positive" (default) or "negative": a negative search's list demotes what it
  finds instead of adding it (search/fusion.py).
- `on_empty`: "skip" leaves a search out when its input is empty; "error" refuses the query.
  `skip_if_empty: true`, the other spelling configurations written elsewhere use, is the same
  as "skip", `false` as "error".
- `fusion`: "rrf" or {"strategy": "rrf", "k": 60}; each search may carry a `weight` (default 1,
  at most MAX_WEIGHT) and a `name` (default its input mode; no ":", which expansions use) under
  which its rank is reported. A query's `weights` (execute_retriever) replace them per name.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_TOP_K = 1000  # pgvector's hnsw.ef_search tops out at 1000; so does a search's top_k
ACTIVE_FEATURE = "active"
MAX_WEIGHT = 10.0  # a search's weight, configured or given with a query, lies in [0, MAX_WEIGHT]
TEMPLATE_RE = re.compile(
    r"^\{\{\s*INPUT\.(text|image|document_id|keywords|doc_ref\.document_id|doc_ref\.collection_id"
    r"|references|negatives|region|negative_image)\s*\}\}$"
)
DOCUMENT_TEMPLATES = frozenset({"document_id", "doc_ref.document_id"})
# Document references that expand into one search per artwork given.
MULTI_DOCUMENT_TEMPLATES = frozenset({"references", "negatives"})
CONTENT_TEMPLATES = frozenset({"image", "region", "negative_image"})
COLLECTION_TEMPLATE = "doc_ref.collection_id"
EXPANSION_SEPARATOR = ":"  # "reference:17": a multi-document search's name, then the artwork

InputMode = Literal["text", "content", "document", "keywords"]
TopK = Annotated[int, Field(ge=1, le=MAX_TOP_K)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DocumentRef(_Strict):
    """A document reference: which artwork (and, optionally, the collection it must be in)."""

    collection_id: str | int | None = None
    document_id: str | int

    @model_validator(mode="after")
    def _check_parts(self) -> DocumentRef:
        _check_document_id(self.document_id, where='"document_ref.document_id"')
        ref = self.collection_id
        if isinstance(ref, str) and "{{" in ref and template_name(ref) != COLLECTION_TEMPLATE:
            raise ValueError(
                '"document_ref.collection_id" must be "{{INPUT.doc_ref.collection_id}}" or a '
                "collection's name or id"
            )
        return self


def _check_document_id(ref: str | int, *, where: str) -> None:
    if isinstance(ref, int) or template_name(ref) in DOCUMENT_TEMPLATES:
        return
    if template_name(ref) is None and ref.strip().isdigit():
        return
    raise ValueError(
        f'{where} must be "{{{{INPUT.document_id}}}}", "{{{{INPUT.doc_ref.document_id}}}}", '
        '"{{INPUT.references}}", "{{INPUT.negatives}}" or an artwork id'
    )


class Query(_Strict):
    input_mode: InputMode
    value: str | None = None
    document_ref: str | int | DocumentRef | None = None

    @model_validator(mode="after")
    def _check_inputs(self) -> Query:
        if self.input_mode == "document":
            if self.value is not None:
                raise ValueError('a "document" query takes "document_ref", not "value"')
            ref = self.document_ref
            if ref is None:
                raise ValueError('a "document" query needs "document_ref"')
            if isinstance(ref, str) and template_name(ref) in MULTI_DOCUMENT_TEMPLATES:
                return self
            if not isinstance(ref, DocumentRef):
                _check_document_id(ref, where='"document_ref"')
            return self
        if self.document_ref is not None:
            raise ValueError(f'a "{self.input_mode}" query takes "value", not "document_ref"')
        if self.value is None:
            raise ValueError(f'a "{self.input_mode}" query needs "value"')
        name = template_name(self.value)
        if self.input_mode == "content" and name not in CONTENT_TEMPLATES:
            raise ValueError(
                'a "content" query\'s value must be "{{INPUT.image}}", "{{INPUT.region}}" or '
                '"{{INPUT.negative_image}}"'
            )
        if self.input_mode in {"text", "keywords"} and name not in {"text", "keywords", None}:
            raise ValueError(f'a "{self.input_mode}" query cannot take {{{{INPUT.{name}}}}}')
        if "{{" in self.value and name is None:
            raise ValueError(
                f"unknown template {self.value!r}; use {{{{INPUT.text}}}}, {{{{INPUT.image}}}}, "
                "{{INPUT.document_id}}, {{INPUT.keywords}}, {{INPUT.references}}, "
                "{{INPUT.negatives}}, {{INPUT.region}} or {{INPUT.negative_image}}"
            )
        return self


class Search(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[^:]+$")
    feature: str | None = None
    feature_uri: str | None = None
    query: Query
    top_k: TopK = 250
    on_empty: Literal["skip", "error"] = "skip"
    weight: float = Field(default=1.0, ge=0.0, le=MAX_WEIGHT)
    polarity: Literal["positive", "negative"] = "positive"

    @model_validator(mode="before")
    @classmethod
    def _skip_if_empty(cls, data: Any) -> Any:
        """`skip_if_empty: true|false` is another spelling of on_empty skip|error."""
        if not isinstance(data, dict) or "skip_if_empty" not in data:
            return data
        data = dict(data)
        flag = data.pop("skip_if_empty")
        if not isinstance(flag, bool):
            raise ValueError('"skip_if_empty" must be true or false')
        wanted = "skip" if flag else "error"
        if "on_empty" in data and data["on_empty"] != wanted:
            raise ValueError(
                f'"skip_if_empty": {str(flag).lower()} contradicts "on_empty": '
                f"{data['on_empty']!r}; give one of them"
            )
        data["on_empty"] = wanted
        return data

    @field_validator("feature_uri")
    @classmethod
    def _uri_form(cls, value: str | None) -> str | None:
        if value is not None:
            from search.feature_uris import parse_feature_uri

            parse_feature_uri(value)  # the form only; save() checks that a collection has it
        return value

    @model_validator(mode="after")
    def _check_feature(self) -> Search:
        if self.feature and self.feature_uri:
            raise ValueError('give "feature" or "feature_uri", not both')
        if self.query.input_mode != "keywords" and not self.feature_ref:
            raise ValueError(
                f'a "{self.query.input_mode}" search needs "feature" (e.g. "active") or '
                '"feature_uri"'
            )
        return self

    @property
    def feature_ref(self) -> str | None:
        """The feature as configured: a URI, "active" or a feature's name."""
        return self.feature_uri or self.feature

    @property
    def label(self) -> str:
        return self.name or self.query.input_mode

    @property
    def expands(self) -> bool:
        """Whether it runs once per artwork given ({{INPUT.references}}, {{INPUT.negatives}})."""
        return self.source in MULTI_DOCUMENT_TEMPLATES

    @property
    def source(self) -> str | None:
        """The template its input comes from ("text", "image", "references", ...); None for a
        literal."""
        query = self.query
        if query.input_mode == "document":
            ref = query.document_ref
            if isinstance(ref, DocumentRef):
                ref = ref.document_id
            return template_name(ref) if isinstance(ref, str) else None
        return template_name(query.value or "")


class Fusion(_Strict):
    strategy: Literal["rrf"] = "rrf"
    k: float = Field(default=60.0, ge=0.0)


class Parameters(_Strict):
    searches: list[Search] = Field(min_length=1, max_length=8)
    final_top_k: Annotated[int, Field(ge=1, le=10 * MAX_TOP_K)] = 500
    fusion: Fusion = Fusion()

    @field_validator("fusion", mode="before")
    @classmethod
    def _fusion_shorthand(cls, value: Any) -> Any:
        return {"strategy": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _unique_names(self) -> Parameters:
        labels = [search.label for search in self.searches]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(
                f'two searches are both named {duplicates[0]!r}: give each a distinct "name"'
            )
        return self


class RetrieverConfig(_Strict):
    stage_id: Literal["feature_search"] = "feature_search"
    parameters: Parameters


def template_name(value: str) -> str | None:
    """'{{INPUT.text}}' -> 'text'; anything else -> None."""
    match = TEMPLATE_RE.match(value.strip())
    return match.group(1) if match else None


class ConfigError(ValueError):
    """A configuration that does not validate; the message lists every problem."""


def parse_config(data: Any) -> RetrieverConfig:
    try:
        return RetrieverConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc)) from exc


def describe_errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "config"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


# Retrieval settings (declared in gallery/config.py), read when used so overrides apply.
def max_text_chars() -> int:
    return int(settings.SEARCH_MAX_TEXT_CHARS)


def ef_search_floor() -> int:
    # Above top_k (250) on purpose: HNSW's recall at top_k rows grows with the candidate list;
    # bench/recall.py measures it.
    return int(settings.SEARCH_HNSW_EF_SEARCH)


def ef_search_text() -> int:
    """The floor for text queries. A text vector lies away from the image vectors (SigLIP's
    modality gap), where HNSW's greedy walk finds the true neighbours later, so text needs a
    longer candidate list than images for the same recall (bench/recall.py measures both)."""
    return int(settings.SEARCH_HNSW_EF_SEARCH_TEXT)


def ef_search_for(input_mode: str) -> int:
    """hnsw.ef_search floor for a search of this input mode (text, content, document)."""
    return ef_search_text() if input_mode == "text" else ef_search_floor()


def cache_ttl() -> int:
    return int(settings.SEARCH_CACHE_TTL)


def max_page_size() -> int:
    return int(settings.SEARCH_MAX_PAGE_SIZE)


def default_config(*, keywords: bool = False, top_k: int = 250) -> dict[str, Any]:
    """The default pipeline (text, image, document; top 250 each; final 500; RRF k = 60), plus
    a keyword search over the metadata for the hybrid retriever, then the exploration searches:
    more reference artworks ("reference:<id>"), a region's crop ("region"), and the negative
    examples, artworks ("unlike:<id>") and an upload ("unlike-image")."""
    searches: list[dict[str, Any]] = [
        {
            "feature": ACTIVE_FEATURE,
            "query": {"input_mode": "text", "value": "{{INPUT.text}}"},
            "top_k": top_k,
            "on_empty": "skip",
        },
        {
            "feature": ACTIVE_FEATURE,
            "query": {"input_mode": "content", "value": "{{INPUT.image}}"},
            "top_k": top_k,
            "on_empty": "skip",
        },
        {
            "feature": ACTIVE_FEATURE,
            "query": {"input_mode": "document", "document_ref": "{{INPUT.document_id}}"},
            "top_k": top_k,
            "on_empty": "skip",
        },
    ]
    if keywords:
        searches.append(
            {
                "query": {"input_mode": "keywords", "value": "{{INPUT.text}}"},
                "top_k": top_k,
                "on_empty": "skip",
            }
        )
    searches += exploration_searches(top_k=top_k)
    return {
        "stage_id": "feature_search",
        "parameters": {"searches": searches, "final_top_k": 500, "fusion": "rrf"},
    }


def exploration_searches(*, top_k: int = 250) -> list[dict[str, Any]]:
    """The searches the default retrievers add for exploring: several references, a region,
    and negative examples (artworks and an upload)."""
    common = {"feature": ACTIVE_FEATURE, "top_k": top_k, "on_empty": "skip"}
    return [
        {
            "name": "reference",
            **common,
            "query": {"input_mode": "document", "document_ref": "{{INPUT.references}}"},
        },
        {
            "name": "region",
            **common,
            "query": {"input_mode": "content", "value": "{{INPUT.region}}"},
        },
        {
            "name": "unlike",
            **common,
            "polarity": "negative",
            "query": {"input_mode": "document", "document_ref": "{{INPUT.negatives}}"},
        },
        {
            "name": "unlike-image",
            **common,
            "polarity": "negative",
            "query": {"input_mode": "content", "value": "{{INPUT.negative_image}}"},
        },
    ]
