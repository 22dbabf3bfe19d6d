"""The retriever configuration: its schema, its validation, and the settings retrieval reads.

A configuration is the case study's JSON, e.g.

    {"stage_id": "feature_search", "parameters": {
      "searches": [
        {"feature": "active", "query": {"input_mode": "text", "value": "{{INPUT.text}}"},
         "top_k": 250, "on_empty": "skip"},
        {"feature": "active", "query": {"input_mode": "content", "value": "{{INPUT.image}}"},
         "top_k": 250, "on_empty": "skip"},
        {"feature": "active",
         "query": {"input_mode": "document", "document_ref": "{{INPUT.document_id}}"},
         "top_k": 250, "on_empty": "skip"},
        {"query": {"input_mode": "keywords", "value": "{{INPUT.keywords}}"}, "top_k": 250}],
      "final_top_k": 500, "fusion": "rrf"}}

- `feature` is "active" (the feature that is active when the query runs, so activating a new
  model needs no edit of any retriever) or a feature's name. Keyword searches need none.
- Values are templates `{{INPUT.text}}`, `{{INPUT.image}}`, `{{INPUT.document_id}}`,
  `{{INPUT.keywords}}`, or a literal (a fixed text, keywords or artwork id; images are always
  inputs).
- `on_empty`: "skip" leaves a search out when its input is empty; "error" refuses the query.
- `fusion`: "rrf" or {"strategy": "rrf", "k": 60}; each search may carry a `weight` (default 1)
  and a `name` (default its input mode) under which its rank is reported.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_TOP_K = 1000  # pgvector's hnsw.ef_search tops out at 1000; so does a search's top_k
ACTIVE_FEATURE = "active"
TEMPLATE_RE = re.compile(r"^\{\{\s*INPUT\.(text|image|document_id|keywords)\s*\}\}$")

InputMode = Literal["text", "content", "document", "keywords"]
TopK = Annotated[int, Field(ge=1, le=MAX_TOP_K)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Query(_Strict):
    input_mode: InputMode
    value: str | None = None
    document_ref: str | int | None = None

    @model_validator(mode="after")
    def _check_inputs(self) -> Query:
        if self.input_mode == "document":
            if self.value is not None:
                raise ValueError('a "document" query takes "document_ref", not "value"')
            ref = self.document_ref
            if ref is None:
                raise ValueError('a "document" query needs "document_ref"')
            if isinstance(ref, str) and template_name(ref) not in {"document_id", None}:
                raise ValueError('"document_ref" must be "{{INPUT.document_id}}" or an artwork id')
            if isinstance(ref, str) and template_name(ref) is None and not ref.strip().isdigit():
                raise ValueError('"document_ref" must be "{{INPUT.document_id}}" or an artwork id')
            return self
        if self.document_ref is not None:
            raise ValueError(f'a "{self.input_mode}" query takes "value", not "document_ref"')
        if self.value is None:
            raise ValueError(f'a "{self.input_mode}" query needs "value"')
        name = template_name(self.value)
        if self.input_mode == "content" and name != "image":
            raise ValueError('a "content" query\'s value must be "{{INPUT.image}}"')
        if self.input_mode in {"text", "keywords"} and name in {"image", "document_id"}:
            raise ValueError(f'a "{self.input_mode}" query cannot take {{{{INPUT.{name}}}}}')
        if "{{" in self.value and name is None:
            raise ValueError(
                f"unknown template {self.value!r}; use {{{{INPUT.text}}}}, {{{{INPUT.image}}}}, "
                "{{INPUT.document_id}} or {{INPUT.keywords}}"
            )
        return self


class Search(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=40)
    feature: str | None = None
    query: Query
    top_k: TopK = 250
    on_empty: Literal["skip", "error"] = "skip"
    weight: float = Field(default=1.0, ge=0.0)

    @model_validator(mode="after")
    def _check_feature(self) -> Search:
        if self.query.input_mode != "keywords" and not self.feature:
            raise ValueError(f'a "{self.query.input_mode}" search needs "feature" (e.g. "active")')
        return self

    @property
    def label(self) -> str:
        return self.name or self.query.input_mode


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


def search_setting(name: str, default: int) -> int:
    """Retrieval settings, each overridable in Django settings (see README)."""
    return int(getattr(settings, name, default))


def max_text_chars() -> int:
    return search_setting("SEARCH_MAX_TEXT_CHARS", 1000)


def ef_search_floor() -> int:
    # Measured here: ef_search 400 gives recall@250 0.957 on 120k clustered vectors (250: 0.92).
    return search_setting("SEARCH_HNSW_EF_SEARCH", 400)


def ef_search_text() -> int:
    """The floor for text queries. A text vector lies away from the image vectors (SigLIP's
    modality gap), where HNSW's greedy walk finds the true neighbours later: at 120,000 vectors
    the benchmark's text queries had recall@250 0.55 at ef_search 400."""
    return search_setting("SEARCH_HNSW_EF_SEARCH_TEXT", 800)


def ef_search_for(input_mode: str) -> int:
    """hnsw.ef_search floor for a search of this input mode (text, content, document)."""
    return ef_search_text() if input_mode == "text" else ef_search_floor()


def cache_ttl() -> int:
    return search_setting("SEARCH_CACHE_TTL", 600)


def max_page_size() -> int:
    return search_setting("SEARCH_MAX_PAGE_SIZE", 200)


def default_config(*, keywords: bool = False, top_k: int = 250) -> dict[str, Any]:
    """The case study's pipeline (text, image, document; top 250 each; final 500; RRF k = 60),
    plus a keyword search over the metadata for the hybrid retriever."""
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
    return {
        "stage_id": "feature_search",
        "parameters": {"searches": searches, "final_top_k": 500, "fusion": "rrf"},
    }
