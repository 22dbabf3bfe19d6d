"""POST /api/retrievers/{name}/execute: JSON (images as base64) or multipart (images as files)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from ninja import Router
from pydantic import ValidationError

from gallery.images import mebibytes, too_many_bytes
from search import case_study
from search.config import cache_ttl, describe_errors
from search.errors import BadWeight, ImageTooLarge, RetrievalError
from search.facets import Facets, facet_counts, fused_artwork_ids
from search.filters import Filters
from search.retriever import (
    DocRef,
    Region,
    RetrievalInputs,
    RetrievalResult,
    decode_base64_image,
    execute_retriever,
)
from search.retriever.cache import FusedList, get_payload, result_keys
from search.retriever.plan import plan_searches, retriever_config, stored_retriever
from search.schemas import (
    PAGE_SIZE_BOUNDS,
    TOP_K_BOUNDS,
    DocRefIn,
    ErrorOut,
    ExecuteIn,
    ExecuteOut,
    FiltersIn,
    InputsIn,
    RegionIn,
    inline_schema,
)

router = Router(tags=["retrievers"])

# Every status an operation may answer besides 200, each with the same ErrorOut body: 429 from
# the rate limit, 500 and 503 from failures (see gallery/api.py).
ERRORS: dict[int, type[ErrorOut]] = {
    code: ErrorOut for code in (400, 404, 409, 413, 422, 429, 500, 503)
}


# The images a multipart request may send as files, each named as its inputs field.
FILE_PARTS = ("image", "negative_image")


class BadRequestBody(RetrievalError):
    status_code = 422
    code = "bad_request_body"


def _request_body_doc() -> dict[str, Any]:
    inputs = inline_schema(InputsIn)
    for part in FILE_PARTS:  # file parts instead
        del inputs["properties"][part]
    weights = inline_schema(ExecuteIn)["properties"]["weights"]
    multipart = {
        "type": "object",
        "properties": {
            # Parts holding JSON text: see "encoding" below.
            "inputs": {**inputs, "description": "The inputs object (the images as file parts)"},
            "filters": {**inline_schema(FiltersIn), "description": "The filters object"},
            "weights": {**weights, "description": "The weights object"},
            "offset": {"type": "integer", "default": 0, "minimum": 0},
            "limit": {"type": "integer", "default": settings.GALLERY_PAGE_SIZE, **PAGE_SIZE_BOUNDS},
            "top_k": {"type": "integer", **TOP_K_BOUNDS},
            "image": {"type": "string", "format": "binary", "description": "{{INPUT.image}}"},
            "negative_image": {
                "type": "string",
                "format": "binary",
                "description": '{{INPUT.negative_image}}: an image marked "less like this"',
            },
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": inline_schema(ExecuteIn),
                    "examples": case_study.REQUEST_EXAMPLES,
                },
                "multipart/form-data": {
                    "schema": multipart,
                    "encoding": {
                        "inputs": {"contentType": "application/json"},
                        "filters": {"contentType": "application/json"},
                        "weights": {"contentType": "application/json"},
                    },
                },
            },
        },
        "responses": {
            200: {"content": {"application/json": {"examples": case_study.RESPONSE_EXAMPLES}}}
        },
    }


@router.post(
    "/retrievers/{name}/execute",
    response={200: ExecuteOut, **ERRORS},
    url_name="retriever_execute",
    summary="Run a retriever, by name or id",
    openapi_extra=_request_body_doc(),
)
def execute(request: HttpRequest, name: str) -> Any:
    """Runs each search of the retriever (`name`: its name, or else its id) whose input is given
    and fuses the lists by RRF: score = Σ wᵢ/(k + rankᵢ) over the positive searches that found
    an artwork − Σ wⱼ/(k + rankⱼ) over the negative ones ("less like this", e.g. `negatives`,
    `negative_image`), every weight 1 unless `weights` says otherwise; only artworks some
    positive search found are listed. Returns a page of the fused list, each result's rank in
    each search (negative ones included), per-stage timing (stage_name, num_features,
    searches_run, fusion_strategy, total_results, duration_ms, cache_hit) with each search's
    polarity, weight and whether its list came from the cache, and `facets`: counts of
    classification, century, artist, source and collection over the whole fused list, each value
    with the filters that select it. Each search's ranked list is cached on its own, so a request
    that changes only `weights` encodes and searches nothing again."""
    body, files = _parse(request)
    image = files.get("image") or _base64_image(body.inputs.image)
    negative_image = files.get("negative_image") or _base64_image(body.inputs.negative_image)
    inputs = RetrievalInputs(
        text=body.inputs.text,
        image=image,
        document_id=body.inputs.document_id,
        keywords=body.inputs.keywords,
        doc_ref=_doc_ref(body.inputs.doc_ref),
        references=tuple(body.inputs.references),
        negatives=tuple(body.inputs.negatives),
        negative_image=negative_image,
        region=_region(body.inputs.region),
    )
    filters = body.filters.to_filters()
    result = execute_retriever(
        name=name,
        inputs=inputs,
        filters=filters,
        offset=body.offset,
        limit=body.limit,
        top_k=body.top_k,
        # Without the cache's answer the list still goes into it: the facets read it back.
        refresh=not body.use_cache,
        weights=body.weights,
    )
    facets = _facets(
        name=name,
        inputs=inputs,
        filters=filters,
        top_k=body.top_k,
        weights=body.weights,
        use_cache=body.use_cache,
        keep=not result.notices,  # a degraded result is not kept
    )
    return result_payload(result, facets=facets)


def _facets(
    *,
    name: str,
    inputs: RetrievalInputs,
    filters: Filters,
    top_k: int | None,
    weights: Mapping[str, float] | None,
    use_cache: bool,
    keep: bool,
) -> Facets:
    """The facets of the whole fused list, cached beside it: keyed by the fused list's own key,
    which holds the collection version read first, so a hit never describes older data."""
    stored = stored_retriever(name=name)
    plan = plan_searches(
        config=retriever_config(name=name, stored=stored),
        inputs=inputs,
        top_k=top_k,
        weights=weights,
    )
    assert stored.config_text is not None  # retriever_config refused a missing one
    keys = result_keys(
        config_text=stored.config_text,
        plan=plan,
        filters=filters,
        version=stored.version,
        offset=0,
        limit=1,
    )
    key = f"{keys.fused}:facets"
    if use_cache:
        cached = cache.get(key)
        if isinstance(cached, Facets):
            return cached
    # Counted over the whole fused list: the one the retriever just stored, else read back a
    # page at a time through the retriever.
    fused = get_payload(keys.fused, FusedList)
    if fused is not None:
        ids = [item.item for item in fused.items]
    else:
        ids = fused_artwork_ids(
            name=name, inputs=inputs, filters=filters, top_k=top_k, weights=weights
        )
    facets = facet_counts(artwork_ids=ids)
    if keep:
        cache.set(key, facets, timeout=cache_ttl())
    return facets


def result_payload(result: RetrievalResult, *, facets: Facets | None = None) -> ExecuteOut:
    """The response from a result that is valid already: an ExecuteOut instance, which
    django-ninja serialises without validating it again."""
    return ExecuteOut.model_construct(**dict(result), facets=facets)


def _doc_ref(value: DocRefIn | None) -> DocRef | None:
    if value is None:
        return None
    return DocRef(document_id=value.document_id, collection_id=value.collection())


def _region(value: RegionIn | None) -> Region | None:
    if value is None:
        return None
    return Region(
        x=value.x,
        y=value.y,
        width=value.width,
        height=value.height,
        document_id=value.document_id,
    )


def _base64_image(value: str | None) -> bytes | None:
    return decode_base64_image(value) if value else None


def _parse(request: HttpRequest) -> tuple[ExecuteIn, dict[str, bytes]]:
    content_type = request.content_type or ""
    try:
        if content_type.startswith("multipart/form-data"):
            return _parse_multipart(request)
        try:
            data = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequestBody(f"The body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadRequestBody("The body must be a JSON object.")
        return ExecuteIn.model_validate(data), {}
    except RequestDataTooBig as exc:
        raise ImageTooLarge(
            f"The request is larger than {mebibytes(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)}."
        ) from exc
    except ValidationError as exc:
        if all(error["loc"][:1] == ("weights",) for error in exc.errors()):
            # A weight that is not a number: the same code as one out of range.
            raise BadWeight(describe_errors(exc)) from exc
        raise BadRequestBody(describe_errors(exc)) from exc


def _parse_multipart(request: HttpRequest) -> tuple[ExecuteIn, dict[str, bytes]]:
    form = request.POST
    data: dict[str, Any] = {}
    for field in ("inputs", "filters", "weights"):
        if form.get(field):
            try:
                data[field] = json.loads(form[field])
            except ValueError as exc:
                raise BadRequestBody(f"The form field {field!r} is not valid JSON.") from exc
    for field in ("offset", "limit", "top_k"):
        if form.get(field):
            data[field] = form[field]
    files: dict[str, bytes] = {}
    for part in FILE_PARTS:
        upload = request.FILES.get(part)
        if upload is None:
            continue
        limit = settings.GALLERY_MAX_UPLOAD_BYTES
        if upload.size is not None and upload.size > limit:
            raise ImageTooLarge(too_many_bytes(size=upload.size, limit=limit))
        files[part] = upload.read()
    body = ExecuteIn.model_validate(data)
    for part in files:
        if getattr(body.inputs, part):
            raise BadRequestBody(f"Send the {part} either as a file or as base64, not both.")
    return body, files
