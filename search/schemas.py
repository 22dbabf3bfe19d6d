"""API schemas of the retriever endpoints (and the result shapes the artworks router shares)."""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Schema
from pydantic import Field

from search.filters import Filters


class FiltersIn(Schema):
    classification: Annotated[str, Field(description="Exact, case-insensitive.")] = ""
    artist: Annotated[str, Field(description="Substring of the artist, case-insensitive.")] = ""
    year_from: Annotated[
        int | None, Field(description="The artwork's years overlap [year_from, year_to].")
    ] = None
    year_to: int | None = None
    source: Annotated[str, Field(description="nga, aic, local or upload.")] = ""

    def to_filters(self) -> Filters:
        return Filters(**self.model_dump(include=set(FiltersIn.model_fields)))


class InputsIn(Schema):
    text: Annotated[str, Field(description="Through the text tower; {{INPUT.text}}.")] = ""
    image: Annotated[
        str | None,
        Field(
            description="Base64 image bytes or a data: URL; {{INPUT.image}}. In a multipart "
            "request send the file as the `image` part instead."
        ),
    ] = None
    document_id: Annotated[
        int | None, Field(description="Find similar: {{INPUT.document_id}}.")
    ] = None
    keywords: Annotated[str, Field(description="Full-text keywords; {{INPUT.keywords}}.")] = ""


class ExecuteIn(Schema):
    inputs: InputsIn = InputsIn()
    filters: FiltersIn = FiltersIn()
    offset: Annotated[int, Field(description="Start of the page in the fused list.")] = 0
    limit: Annotated[int, Field(description="Page size.")] = 24
    top_k: Annotated[int | None, Field(description="Replaces every search's top_k (1..1000).")] = (
        None
    )
    use_cache: bool = True


class SearchStatsOut(Schema):
    name: str
    input_mode: str
    feature: str
    top_k: int
    encode_ms: float
    knn_ms: float
    returned: int
    vector_cached: bool
    fallback: Annotated[
        str,
        Field(
            description='"keywords" when the encoder was unavailable and the text was searched '
            "by keywords instead; empty otherwise."
        ),
    ] = ""


class StageStatsOut(Schema):
    stage_name: str
    num_features: int
    fusion_strategy: str
    total_results: int
    duration_ms: float
    cache_hit: bool
    searches: list[SearchStatsOut]


class ResultOut(Schema):
    artwork_id: int
    title: str
    artist: str
    display_date: str
    thumbnail_url: str
    width: int | None
    height: int | None
    score: float
    ranks: dict[str, int] = Field(description="Each search's rank (from 1) for this artwork.")


class ExecuteOut(Schema):
    results: list[ResultOut]
    total: int
    offset: int
    limit: int
    stages: list[StageStatsOut]
    cache_hit: bool
    duration_ms: float
    notices: Annotated[
        list[str],
        Field(
            description="Things to tell the person, e.g. that the image model is unavailable "
            "and keyword matches are shown instead."
        ),
    ] = []


class ErrorOut(Schema):
    detail: str
    code: str


def inline_schema(model: type[Schema]) -> dict[str, Any]:
    """The model's JSON schema with its $defs inlined (for an openapi_extra requestBody)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)  # type: ignore[no-any-return]
