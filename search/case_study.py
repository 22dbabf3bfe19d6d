"""The published case study's execute call, as examples for the API documentation (OpenAPI).

Its request is `{"inputs": {"text": "dog outside"}}`; its response reports one stage as
{"stage_name": "feature_search", "num_features": 3, "fusion_strategy": "rrf",
"total_results": 250, "duration_ms": 899.33, "cache_hit": false}: `num_features` counts the
searches the stage configures (three), though only the text search ran (`searches_run`).
"""

from __future__ import annotations

from typing import Any

# A 1×1 PNG stands in for a real picture.
_TINY_IMAGE = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)

REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "text": {
        "summary": "Text (the case study's call)",
        "value": {"inputs": {"text": "dog outside"}},
    },
    "image": {
        "summary": "An image, base64",
        "value": {"inputs": {"image": _TINY_IMAGE}},
    },
    "doc_ref": {
        "summary": "Find similar: a document reference",
        "value": {"inputs": {"doc_ref": {"collection_id": "default", "document_id": 1}}},
    },
    "all": {
        "summary": "Text, image and document together, fused by RRF",
        "value": {
            "inputs": {
                "text": "dog outside",
                "image": _TINY_IMAGE,
                "doc_ref": {"collection_id": "default", "document_id": 1},
            },
            "limit": 24,
        },
    },
}

RESPONSE_EXAMPLES: dict[str, dict[str, Any]] = {
    "text": {
        "summary": "The case study's per-stage timing",
        "value": {
            "results": [
                {
                    "artwork_id": 42,
                    "title": "A dog in a garden",
                    "artist": "Unknown",
                    "display_date": "1880",
                    "thumbnail_url": "/media/thumbnails/aic-42.webp",
                    "width": 843,
                    "height": 600,
                    "alt_text": "",
                    "score": 0.01639344,
                    "ranks": {"text": 1},
                }
            ],
            "total": 250,
            "offset": 0,
            "limit": 24,
            "stages": [
                {
                    "stage_name": "feature_search",
                    "num_features": 3,
                    "searches_run": 1,
                    "fusion_strategy": "rrf",
                    "total_results": 250,
                    "duration_ms": 899.33,
                    "cache_hit": False,
                    "searches": [
                        {
                            "name": "text",
                            "input_mode": "text",
                            "feature": "siglip-base-patch16-224@v1",
                            "top_k": 250,
                            "encode_ms": 80.1,
                            "knn_ms": 17.2,
                            "returned": 250,
                            "vector_cached": False,
                            "fallback": "",
                        }
                    ],
                }
            ],
            "cache_hit": False,
            "duration_ms": 899.33,
            "notices": [],
        },
    }
}
