"""The JSON API: every query type, uploads as multipart and base64, pagination, every bad input."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from gallery.models import Artwork
from tests.fixtures.corpus import RECORDS, Corpus, EncodedCorpus

pytestmark = pytest.mark.django_db

SNAPSHOT = Path(__file__).parent / "snapshots" / "openapi.json"


def execute(client: Client, body: object, name: str = "default"):
    return client.post(
        reverse("api:retriever_execute", kwargs={"name": name}),
        data=json.dumps(body),
        content_type="application/json",
    )


def error(response: Any) -> tuple[int, str]:  # the test client's response
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


def test_hybrid_retriever_fuses_keywords(
    client: Client, test_encoder_settings: Path, encoded_corpus: EncodedCorpus
) -> None:
    """The hybrid retriever runs a full-text search of the text beside the text and document
    searches, and fuses all three by RRF (k = 60)."""
    from search.keywords import keyword_search

    corpus, _, _ = encoded_corpus
    text = "storm sea"
    body = {"inputs": {"text": text, "document_id": corpus.id_of("Harbor at Night")}}
    data = execute(client, {**body, "limit": 10, "use_cache": False}, name="hybrid").json()
    assert [s["name"] for s in data["stages"][0]["searches"]] == ["text", "document", "keywords"]
    # Each artwork's keyword rank is its place in the full-text search's own list.
    expected = {artwork_id: place for place, (artwork_id, _) in enumerate(
        keyword_search(text=text, top_k=250), start=1)}  # fmt: skip
    titles = set(Artwork.objects.filter(pk__in=expected).values_list("title", flat=True))
    assert {"Storm at Sea", "Sea Study"} <= titles
    ranked = {r["artwork_id"]: r["ranks"].get("keywords") for r in data["results"]}
    assert {a: rank for a, rank in ranked.items() if rank} == expected
    # The order is RRF over the three lists.
    scores = [sum(1 / (60 + rank) for rank in r["ranks"].values()) for r in data["results"]]
    assert scores == sorted(scores, reverse=True)


def test_image_as_base64_and_as_multipart(
    client: Client,
    test_encoder_settings: Path,
    encoded_corpus: EncodedCorpus,
    aic_image_bytes: bytes,
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


def test_execute_bad_inputs(client: Client, corpus: Corpus, settings: Settings) -> None:
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
    from gallery.api import api

    schema = api.get_openapi_schema()
    text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    assert json.loads(SNAPSHOT.read_text()) == json.loads(text)
    assert client.get("/api/docs").status_code == 200


# --- hostile text and loose shapes: refused, naming the field, before anything reaches SQL -------

HOSTILE = {"NUL": "a\x00b", "lone surrogate": "a\ud800b", "escape": "x\x1b[31m"}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_text_in_json_is_refused_naming_the_field(
    client: Client, corpus: Corpus, kind: str
) -> None:
    value = HOSTILE[kind]
    study = corpus.id_of("Study of Trees")
    cases = [
        ("hybrid", {"inputs": {"text": value}}, "bad_text", "text"),
        ("hybrid", {"inputs": {"keywords": value}}, "bad_text", "keywords"),
        ("default", {"inputs": {"text": value}}, "bad_text", "text"),
    ] + [
        ("default", {"inputs": {"document_id": study}, "filters": {name: value}}, "bad_filter",
         name)
        for name in ("artist", "classification", "source")
    ]  # fmt: skip
    for name, body, code, field in cases:
        # json.dumps writes the surrogate as the escape "\ud800": valid JSON text.
        response = execute(client, body, name=name)
        if kind == "lone surrogate":  # pydantic's str refuses it first, naming the field too
            code = "bad_request_body" if "filters" in body else code
        assert error(response) == (422, code), (body, response.content)
        assert field in response.json()["detail"], response.json()
    if kind == "lone surrogate":  # a URL cannot carry one (its UTF-8 would be invalid)
        return
    path = reverse("api:retriever_execute", kwargs={"name": "default"}).replace("default", value)
    named = client.post(path, data="{}", content_type="application/json")
    assert error(named) == (422, "bad_text") and "retriever name" in named.json()["detail"]
    similar = client.get(
        reverse("api:artwork_similar", kwargs={"artwork_id": study}), {"retriever": value}
    )
    assert error(similar)[0] == 422 and "retriever" in similar.json()["detail"]
    listed = client.get(reverse("api:artwork_list"), {"artist": value})
    assert error(listed) == (422, "bad_filter") and "artist" in listed.json()["detail"]


@pytest.mark.parametrize(
    ("field", "part"),
    [
        ("text", {"inputs": '{"text": "\\ud800"}'}),
        ("keywords", {"inputs": '{"keywords": "a\\u0000"}'}),
        ("artist", {"inputs": '{"text": "sea"}', "filters": '{"artist": "\\udfff"}'}),
    ],
)
def test_hostile_text_in_multipart_is_refused_naming_the_field(
    client: Client, corpus: Corpus, field: str, part: dict[str, str]
) -> None:
    url = reverse("api:retriever_execute", kwargs={"name": "hybrid"})
    response = client.post(url, data=part)
    assert response.status_code == 422, response.content
    assert field in response.json()["detail"]


def test_over_long_values_are_refused_naming_the_field(client: Client, corpus: Corpus) -> None:
    study = corpus.id_of("Study of Trees")
    for field in ("artist", "classification", "source"):
        response = execute(
            client, {"inputs": {"document_id": study}, "filters": {field: "x" * 201}}
        )
        assert response.status_code == 422 and field in response.json()["detail"]
    similar = client.get(
        reverse("api:artwork_similar", kwargs={"artwork_id": study}), {"retriever": "r" * 101}
    )
    assert similar.status_code == 422 and "retriever" in similar.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inputs": {"document_id": "STUDY"}, "filters": "artist=Monet"}, "filters"),
        ({"inputs": {"document_id": "STUDY"}, "filters": ["artist"]}, "filters"),
        ({"inputs": 5}, "inputs"),
        ({"inputs": "sea"}, "inputs"),
        ({"inputs": {"document_id": True}}, "inputs.document_id"),
        ({"inputs": {"document_id": "STUDY"}, "limit": True}, "limit"),
        ({"inputs": {"document_id": "STUDY"}, "filters": {"year_from": False}}, "year_from"),
    ],
)
def test_loose_request_shapes_are_refused(
    client: Client, corpus: Corpus, body: dict[str, Any], field: str
) -> None:
    # "STUDY" stands for a real artwork's id, known only once the corpus exists.
    study = corpus.id_of("Study of Trees")
    inputs = body["inputs"]
    if isinstance(inputs, dict) and inputs.get("document_id") == "STUDY":
        body = {**body, "inputs": {"document_id": study}}
    response = execute(client, body)
    assert error(response) == (422, "bad_request_body"), (body, response.content)
    assert field in response.json()["detail"], response.json()


def test_loose_multipart_shapes_are_refused(client: Client, corpus: Corpus) -> None:
    multipart = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data={"inputs": "5", "filters": '"artist=Monet"'},
    )
    assert error(multipart) == (422, "bad_request_body")
    assert "inputs" in multipart.json()["detail"] and "filters" in multipart.json()["detail"]


# --- every error body has the documented shape --------------------------------------------------


def test_framework_validation_errors_have_a_code(client: Client, corpus: Corpus) -> None:
    study = corpus.id_of("Study of Trees")
    for response in (
        client.get(reverse("api:artwork_list"), {"limit": "many"}),
        client.get(reverse("api:artwork_list"), {"offset": -1}),
        client.get(reverse("api:artwork_similar", kwargs={"artwork_id": study}), {"top_k": "x"}),
        client.get("/api/artworks/not-a-number"),
    ):
        body = response.json()
        assert set(body) == {"detail", "code"}, body
        assert isinstance(body["detail"], str) and body["detail"], body
        assert response.status_code in (404, 422)
    limited = client.get(reverse("api:artwork_list"), {"limit": "many"}).json()
    assert limited["code"] == "bad_request" and "limit" in limited["detail"]


def test_unexpected_error_is_json_with_a_code(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for a bug: nothing here fails on its own, so one handler is made to raise.
    settings.DEBUG = False

    def broken(**kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("search.routers.execute_retriever", broken)
    client.raise_request_exception = False
    response = execute(client, {"inputs": {"text": "sea"}})
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {
        "detail": "An unexpected error occurred; it has been logged.",
        "code": "server_error",
    }


def test_every_operation_documents_its_errors_and_bounds() -> None:
    from gallery.api import api

    schema = json.loads(json.dumps(api.get_openapi_schema()))  # as served: status codes as text
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("400", "404", "422", "429", "500", "503"):
                body = responses[status]["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/ErrorOut"}, (path, method, status)
    execute_body = schema["paths"]["/api/retrievers/{name}/execute"]["post"]["requestBody"]
    json_schema = execute_body["content"]["application/json"]["schema"]["properties"]
    assert (json_schema["limit"]["minimum"], json_schema["limit"]["maximum"]) == (1, 200)
    assert (json_schema["top_k"]["minimum"], json_schema["top_k"]["maximum"]) == (1, 1000)
    form = execute_body["content"]["multipart/form-data"]["schema"]["properties"]
    assert (form["limit"]["maximum"], form["top_k"]["maximum"]) == (200, 1000)
    params = {
        p["name"]: p["schema"]
        for p in schema["paths"]["/api/artworks/{artwork_id}/similar"]["get"]["parameters"]
    }
    assert (params["limit"]["maximum"], params["top_k"]["maximum"]) == (200, 1000)
