"""API schemas of the retriever endpoints. The response derives from the retriever's own result
type (search/retriever/results.py), which the pages render too."""

from __future__ import annotations

from typing import Annotated, Any

from django.conf import settings
from ninja import Schema
from pydantic import BeforeValidator, ConfigDict, Field, field_validator
from pydantic.json_schema import JsonDict

from search.config import MAX_TOP_K, MAX_WEIGHT, max_page_size
from search.facets import Facets
from search.filters import MAX_FILTER_CHARS, Filters
from search.retriever.results import RetrievalResult


def _no_bool(value: Any) -> Any:
    # JSON true is not the number 1: pydantic's lax mode would read it so.
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    return value


# Integers that JSON booleans do not pass for; strings of digits (form fields) still do. Bounds
# go before the validator, or pydantic leaves them out of the JSON schema.
_NO_BOOL = BeforeValidator(_no_bool)
Integer = Annotated[int, _NO_BOOL]
Id = Annotated[int, Field(ge=1), _NO_BOOL]
Year = Annotated[int, Field(ge=-10_000, le=10_000), _NO_BOOL]
FilterText = Annotated[str, Field(max_length=MAX_FILTER_CHARS)]


class _Documented(Schema):
    # Each field's docstring is its description in the OpenAPI document.
    model_config = ConfigDict(use_attribute_docstrings=True)


class FiltersIn(_Documented):
    classification: FilterText = ""
    """Exact, case-insensitive."""
    artist: FilterText = ""
    """Substring of the artist, case-insensitive."""
    year_from: Year | None = None
    """The artwork's years overlap [year_from, year_to]."""
    year_to: Year | None = None
    source: FilterText = ""
    """nga, aic, local or upload."""
    collection: FilterText = ""
    """A collection's name or id."""

    def to_filters(self) -> Filters:
        return Filters(**self.model_dump(include=set(FiltersIn.model_fields)))


PAGE_SIZE_BOUNDS: JsonDict = {"minimum": 1, "maximum": max_page_size()}
TOP_K_BOUNDS: JsonDict = {"minimum": 1, "maximum": MAX_TOP_K}
# Like limit and top_k, these bounds are documented here and enforced by the retriever, whose
# errors name them: too_many_references, bad_region, bad_weight.
REFERENCES_BOUNDS: JsonDict = {"maxItems": int(settings.SEARCH_MAX_REFERENCES)}
FRACTION_BOUNDS: JsonDict = {"minimum": 0, "maximum": 1}
SIZE_BOUNDS: JsonDict = {"exclusiveMinimum": 0, "maximum": 1}
WEIGHT_BOUNDS: JsonDict = {"minimum": 0, "maximum": MAX_WEIGHT}


def _no_bool_number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


_NUMBER = BeforeValidator(_no_bool_number)
Fraction = Annotated[float, Field(json_schema_extra=FRACTION_BOUNDS), _NUMBER]
Size = Annotated[float, Field(json_schema_extra=SIZE_BOUNDS), _NUMBER]
Weight = Annotated[float, Field(json_schema_extra=WEIGHT_BOUNDS), _NUMBER]


class DocRefIn(_Documented):
    collection_id: str | Integer | None = None
    """The artwork's collection (its name or id); checked when given."""
    document_id: Id
    """The artwork's id."""

    def collection(self) -> str:
        return "" if self.collection_id is None else str(self.collection_id).strip()


class RegionIn(_Documented):
    """A box on a picture, relative to its size (origin top-left). One outside the picture, or
    under 16 source pixels on a side, is refused with bad_region (422)."""

    x: Fraction
    """Left edge, 0..1 of the picture's width."""
    y: Fraction
    """Top edge, 0..1 of the picture's height."""
    width: Size
    """x + width ≤ 1; at least 16 pixels of the source picture."""
    height: Size
    """y + height ≤ 1; at least 16 pixels of the source picture."""
    document_id: Id | None = None
    """The stored artwork whose original image is cropped; null: the uploaded `image`, whose
    crop then replaces the whole image in the search."""


class InputsIn(_Documented):
    text: str = ""
    """Through the text tower; {{INPUT.text}}."""
    image: str | None = None
    """Base64 image bytes or a data: URL; {{INPUT.image}}. In a multipart request send the file
    as the `image` part instead."""
    document_id: Id | None = None
    """Find similar: {{INPUT.document_id}}."""
    keywords: str = ""
    """Full-text keywords; {{INPUT.keywords}}."""
    doc_ref: DocRefIn | None = None
    """Find similar by a document reference: {{INPUT.doc_ref.document_id}} and
    {{INPUT.doc_ref.collection_id}}. The same input as document_id."""
    references: Annotated[list[Id], Field(json_schema_extra=REFERENCES_BOUNDS)] = []
    """More artworks to find ones like: {{INPUT.references}}, one search each, reported as
    "reference:<id>". More than the maximum: too_many_references (422)."""
    negatives: Annotated[list[Id], Field(json_schema_extra=REFERENCES_BOUNDS)] = []
    """Artworks marked "less like this": {{INPUT.negatives}}, one negative search each
    ("unlike:<id>"), whose ranks lower the fused score."""
    negative_image: str | None = None
    """An image marked "less like this", base64 or a data: URL: {{INPUT.negative_image}}. In a
    multipart request send the file as the `negative_image` part instead."""
    region: RegionIn | None = None
    """Search by a region of the upload or of a stored artwork: {{INPUT.region}}."""


class ExecuteIn(_Documented):
    inputs: InputsIn = InputsIn()
    filters: FiltersIn = FiltersIn()
    offset: Annotated[Integer, Field(json_schema_extra={"minimum": 0})] = 0
    """Start of the page in the fused list."""
    # The bounds of limit and top_k are documented here and enforced by the retriever, whose
    # errors name them (bad_pagination, top_k_out_of_range).
    limit: Annotated[Integer, Field(json_schema_extra=PAGE_SIZE_BOUNDS)] = (
        settings.GALLERY_PAGE_SIZE
    )
    """Page size."""
    top_k: Annotated[Integer | None, Field(json_schema_extra=TOP_K_BOUNDS)] = None
    """Replaces every search's top_k."""
    use_cache: bool = True
    weights: dict[str, Weight] | None = None
    """Replace searches' weights by name: a search's reported name ("text", "reference:17") or
    its configured name ("reference": every reference); the reported name wins. Default 1.
    A weight that is not a number from 0 to 10, or names no search: bad_weight (422)."""

    @field_validator("inputs", "filters", mode="before")
    @classmethod
    def _objects_only(cls, value: Any) -> Any:
        # A Schema reads attributes off any object, so a string or a number would otherwise pass
        # as an empty object and be silently ignored.
        if not isinstance(value, dict | Schema):
            raise ValueError("must be a JSON object")
        return value


class ExecuteOut(RetrievalResult):
    """A page of the fused list, each result's rank in each search, and per-stage timing."""

    facets: Annotated[
        Facets | None,
        Field(
            description="Counts over the whole fused list, not only this page (from execute; "
            "null from the other endpoints)."
        ),
    ] = None


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
