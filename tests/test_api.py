"""The JSON API: every query type, uploads as multipart and base64, pagination, every bad input."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from gallery.models import Artwork
from tests.fixtures.corpus import RECORDS, Corpus

pytestmark = pytest.mark.django_db

SNAPSHOT = Path(__file__).parent / "snapshots" / "openapi.json"


def execute(client: Client, body: object, name: str = "default"):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("api:retriever_execute", kwargs={"name": name}),
        data=json.dumps(body),
        content_type="application/json",
    )


def error(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return response.status_code, response.json()["code"]


def test_execute_document_search_with_pagination(client: Client, corpus: Corpus) -> None:
    study = corpus.id_of("Study of Trees")
    response = execute(client, {"inputs": {"document_id": study}, "offset": 2, "limit": 3})
    assert response.status_code == 200, response.content
    data = response.json()
    assert [r["title"] for r in data["results"]] == [RECORDS[i][0] for i in (1, 5, 0)]
    assert [r["ranks"] for r in data["results"]] == [
        {"document": 3},
        {"document": 4},
        {"document": 5},
    ]
    assert (data["total"], data["offset"], data["limit"], data["cache_hit"]) == (9, 2, 3, False)
    stage = data["stages"][0]
    assert {"stage_name", "num_features", "fusion_strategy", "total_results", "duration_ms",
            "cache_hit", "searches"} <= set(stage)  # fmt: skip
    assert stage["searches"][0]["name"] == "document"
    assert {"encode_ms", "knn_ms", "returned"} <= set(stage["searches"][0])
    # the next page comes from the cache
    page = execute(client, {"inputs": {"document_id": study}, "offset": 5, "limit": 3}).json()
    assert page["cache_hit"] is True
    assert [r["ranks"]["document"] for r in page["results"]] == [6, 7, 8]


def test_hybrid_retriever_fuses_keywords(client: Client, corpus: Corpus) -> None:
    data = execute(
        client,
        {"inputs": {"keywords": "ignored by hybrid", "document_id": corpus.id_of("Sea Study")}},
        name="hybrid",
    ).json()
    assert [s["name"] for s in data["stages"][0]["searches"]] == ["document"]


def test_image_as_base64_and_as_multipart(
    client: Client,
    test_encoder_settings,
    encoded_corpus,
    aic_image_bytes,  # type: ignore[no-untyped-def]
) -> None:
    corpus, _, image_vector = encoded_corpus
    expected = corpus.exact_ranking(image_vector)
    encoded = base64.b64encode(aic_image_bytes).decode()
    for image in (encoded, "data:image/jpeg;base64," + encoded):
        response = execute(client, {"inputs": {"image": image}, "use_cache": False})
        assert response.status_code == 200, response.content
        assert [r["artwork_id"] for r in response.json()["results"]] == expected
    multipart = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data={
            "inputs": json.dumps({"text": ""}),
            "filters": json.dumps({"source": "local"}),
            "limit": "5",
            "image": SimpleUploadedFile("painting.jpg", aic_image_bytes, "image/jpeg"),
        },
    )
    assert multipart.status_code == 200, multipart.content
    data = multipart.json()
    local = [a for a in expected if Artwork.objects.get(pk=a).source == "local"]
    assert [r["artwork_id"] for r in data["results"]] == local[:5]
    assert data["total"] == len(local)
    junk = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data={"image": SimpleUploadedFile("junk.jpg", b"\x00not a picture")},
    )
    assert error(junk) == (422, "bad_image")


def test_execute_bad_inputs(client: Client, corpus: Corpus, settings) -> None:  # type: ignore[no-untyped-def]
    study = corpus.id_of("Study of Trees")
    bare = Artwork.objects.create(source="local", external_id="bare", title="Bare")
    cases = [
        ("unknown retriever", "nope", {"inputs": {"document_id": study}}, 404, "unknown_retriever"),
        ("unknown artwork", "default", {"inputs": {"document_id": 99999}}, 404, "unknown_artwork"),
        ("no embedding yet", "default", {"inputs": {"document_id": bare.pk}}, 409, "not_embedded"),
        ("nothing", "default", {"inputs": {"text": "   "}}, 400, "nothing_to_search"),
        ("empty body", "default", {}, 400, "nothing_to_search"),
        ("long text", "default", {"inputs": {"text": "x" * 1001}}, 422, "text_too_long"),
        ("top_k 0", "default", {"inputs": {"document_id": study}, "top_k": 0}, 422,
         "top_k_out_of_range"),
        ("top_k 1001", "default", {"inputs": {"document_id": study}, "top_k": 1001}, 422,
         "top_k_out_of_range"),
        ("bad base64", "default", {"inputs": {"image": "%%%"}}, 422, "bad_image"),
        ("not an image", "default", {"inputs": {"image": base64.b64encode(b"hello").decode()}},
         422, "bad_image"),
        ("negative offset", "default", {"inputs": {"document_id": study}, "offset": -1}, 422,
         "bad_pagination"),
        ("huge limit", "default", {"inputs": {"document_id": study}, "limit": 10_000}, 422,
         "bad_pagination"),
        ("bad years", "default",
         {"inputs": {"document_id": study}, "filters": {"year_from": 1900, "year_to": 1800}},
         422, "bad_filter"),
        ("wrong type", "default", {"inputs": {"document_id": "abc"}}, 422, "bad_request_body"),
        ("unknown field", "default", {"inputs": {"document_id": study}, "offset": "x"}, 422,
         "bad_request_body"),
    ]  # fmt: skip
    for label, name, body, status, code in cases:
        response = execute(client, body, name=name)
        assert error(response) == (status, code), label
        assert response.json()["detail"], label
    not_json = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data=b"{not json",
        content_type="application/json",
    )
    assert error(not_json) == (422, "bad_request_body")
    settings.GALLERY_MAX_UPLOAD_BYTES = 1000
    big = base64.b64encode(b"x" * 5000).decode()
    assert error(execute(client, {"inputs": {"image": big}})) == (413, "image_too_large")
    upload = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data={"image": SimpleUploadedFile("big.jpg", b"x" * 5000)},
    )
    assert error(upload) == (413, "image_too_large")


def test_artworks_list_detail_and_similar(client: Client, corpus: Corpus) -> None:
    url = reverse("api:artwork_list")
    data = client.get(url, {"limit": 3, "offset": 1}).json()
    titles = sorted(record[0] for record in RECORDS)
    assert [a["title"] for a in data["items"]] == titles[1:4]
    assert (data["total"], data["offset"], data["limit"]) == (10, 1, 3)
    drawings = client.get(url, {"classification": "drawing"}).json()
    assert [a["title"] for a in drawings["items"]] == ["Sea Study", "Study of Trees"]
    old = client.get(url, {"year_to": "1700", "artist": "N"}).json()
    assert [a["title"] for a in old["items"]] == [
        "Madonna and Child", "Portrait of a Lady", "Ship in a Storm",
    ]  # fmt: skip
    assert client.get(url, {"limit": 0}).status_code == 422
    assert client.get(url, {"limit": 1000}).status_code == 422
    assert client.get(url, {"year_from": 1900, "year_to": 1800}).status_code == 422

    study = corpus.id_of("Study of Trees")
    detail = client.get(reverse("api:artwork_detail", kwargs={"artwork_id": study})).json()
    assert (detail["title"], detail["medium"], detail["embedded"]) == (
        "Study of Trees", "Charcoal on paper", True,
    )  # fmt: skip
    missing = client.get(reverse("api:artwork_detail", kwargs={"artwork_id": 999_999}))
    assert error(missing) == (404, "unknown_artwork")

    similar_url = reverse("api:artwork_similar", kwargs={"artwork_id": study})
    similar = client.get(similar_url, {"limit": "4", "classification": "painting"}).json()
    assert [r["title"] for r in similar["results"]] == [RECORDS[i][0] for i in (2, 4, 1, 5)]
    assert similar["total"] == 8
    assert error(client.get(similar_url, {"top_k": 0})) == (422, "top_k_out_of_range")
    bare = Artwork.objects.create(source="local", external_id="bare", title="Bare")
    not_yet = client.get(reverse("api:artwork_similar", kwargs={"artwork_id": bare.pk}))
    assert error(not_yet) == (409, "not_embedded")
    gone = client.get(reverse("api:artwork_similar", kwargs={"artwork_id": 999_999}))
    assert error(gone) == (404, "unknown_artwork")


def test_openapi_snapshot(client: Client) -> None:
    """The API's contract. After an intended change: UPDATE_SNAPSHOTS=1 pytest tests/test_api.py"""
    from search.api import api

    schema = api.get_openapi_schema()
    text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    assert json.loads(SNAPSHOT.read_text()) == json.loads(text)
    assert client.get("/api/docs").status_code == 200
