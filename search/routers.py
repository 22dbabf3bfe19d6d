"""POST /api/retrievers/{name}/execute: JSON (image as base64) or multipart (image as a file)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from ninja import Router
from pydantic import ValidationError

from search.config import describe_errors
from search.errors import ImageTooLarge, RetrievalError
from search.retriever import (
    RetrievalInputs,
    RetrievalResult,
    decode_base64_image,
    execute_retriever,
)
from search.schemas import ErrorOut, ExecuteIn, ExecuteOut, inline_schema

router = Router(tags=["retrievers"])

ERRORS: dict[int, type[ErrorOut]] = {code: ErrorOut for code in (400, 404, 409, 413, 422, 503)}


class BadRequestBody(RetrievalError):
    status_code = 422
    code = "bad_request_body"


def _request_body_doc() -> dict[str, Any]:
    multipart = {
        "type": "object",
        "properties": {
            "inputs": {
                "type": "string",
                "description": 'JSON: {"text": ..., "document_id": ..., "keywords": ...}',
            },
            "filters": {"type": "string", "description": "JSON: the filters object"},
            "offset": {"type": "integer", "default": 0},
            "limit": {"type": "integer", "default": 24},
            "top_k": {"type": "integer"},
            "image": {"type": "string", "format": "binary", "description": "{{INPUT.image}}"},
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": inline_schema(ExecuteIn)},
                "multipart/form-data": {"schema": multipart},
            },
        }
    }


@router.post(
    "/retrievers/{name}/execute",
    response={200: ExecuteOut, **ERRORS},
    url_name="retriever_execute",
    summary="Run a named retriever",
    openapi_extra=_request_body_doc(),
)
def execute(request: HttpRequest, name: str) -> Any:
    """Runs each search of the retriever whose input is given and fuses the lists by RRF.
    Returns a page of the fused list, each result's rank in each search, and per-stage timing."""
    body, image = _parse(request)
    image = image if image is not None else _base64_image(body.inputs.image)
    result = execute_retriever(
        name=name,
        inputs=RetrievalInputs(
            text=body.inputs.text,
            image=image,
            document_id=body.inputs.document_id,
            keywords=body.inputs.keywords,
        ),
        filters=body.filters.to_filters(),
        offset=body.offset,
        limit=body.limit,
        top_k=body.top_k,
        use_cache=body.use_cache,
    )
    return result_payload(result)


def result_payload(result: RetrievalResult) -> dict[str, Any]:
    return asdict(result)


def _base64_image(value: str | None) -> bytes | None:
    return decode_base64_image(value) if value else None


def _parse(request: HttpRequest) -> tuple[ExecuteIn, bytes | None]:
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
        return ExecuteIn.model_validate(data), None
    except RequestDataTooBig as exc:
        raise ImageTooLarge(
            f"The request is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1e6:.0f} MB."
        ) from exc
    except ValidationError as exc:
        raise BadRequestBody(describe_errors(exc)) from exc


def _parse_multipart(request: HttpRequest) -> tuple[ExecuteIn, bytes | None]:
    form = request.POST
    data: dict[str, Any] = {}
    for field in ("inputs", "filters"):
        if form.get(field):
            try:
                data[field] = json.loads(form[field])
            except ValueError as exc:
                raise BadRequestBody(f"The form field {field!r} is not valid JSON.") from exc
    for field in ("offset", "limit", "top_k"):
        if form.get(field):
            data[field] = form[field]
    upload = request.FILES.get("image")
    image = None
    if upload is not None:
        limit = settings.GALLERY_MAX_UPLOAD_BYTES
        if upload.size is not None and upload.size > limit:
            raise ImageTooLarge(
                f"The image is {upload.size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB."
            )
        image = upload.read()
    body = ExecuteIn.model_validate(data)
    if image is not None and body.inputs.image:
        raise BadRequestBody("Send the image either as a file or as base64, not both.")
    return body, image
