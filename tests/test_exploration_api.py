"""Several references, negative examples and weights through the API, each fused order checked
against the formula computed here from independently ranked lists:

    score(d) = Σ_{positive i} wᵢ/(60 + rankᵢ(d)) − Σ_{negative j} wⱼ/(60 + rankⱼ(d))

over the artworks some positive search found; ties by the best positive rank, then the id. The
lists come from the corpus's own vectors (tests/fixtures/corpus.py), ranked here in numpy.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django import Settings

from tests.fixtures.corpus import Corpus, EncodedCorpus

pytestmark = pytest.mark.django_db

K = 60


def execute(client: Client, body: object, name: str = "default") -> Any:
    return client.post(
        reverse("api:retriever_execute", kwargs={"name": name}),
        data=body if isinstance(body, str) else json.dumps(body),
        content_type="application/json",
    )


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    data: dict[str, Any] = response.json()
    return data


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def fuse_by_hand(
    positive: dict[str, list[int]],
    negative: dict[str, list[int]],
    weights: dict[str, float],
) -> list[tuple[int, float]]:
    """(artwork id, score), best first, by the formula above."""

    def rank(ranking: list[int], item: int) -> int:
        return ranking.index(item) + 1

    def score(item: int) -> float:
        gained = sum(
            weights.get(name, 1.0) / (K + rank(ranking, item))
            for name, ranking in positive.items()
            if item in ranking
        )
        lost = sum(
            weights.get(name, 1.0) / (K + rank(ranking, item))
            for name, ranking in negative.items()
            if item in ranking
        )
        return gained - lost

    def best(item: int) -> int:
        return min(rank(r, item) for r in positive.values() if item in r)

    found = {item for ranking in positive.values() for item in ranking}
    ordered = sorted(found, key=lambda item: (-round(score(item), 12), best(item), item))
    return [(item, score(item)) for item in ordered]


def similar(corpus: Corpus, artwork_id: int) -> list[int]:
    """A reference's list: the others by cosine distance to the artwork."""
    return corpus.exact_ranking(corpus.vectors[corpus.ids.index(artwork_id)], exclude=artwork_id)


def unlike(corpus: Corpus, artwork_id: int) -> list[int]:
    """A negative example's list: the artwork itself first, so that it is demoted the most."""
    return [artwork_id, *similar(corpus, artwork_id)]


def score_from_ranks(result: dict[str, Any], searches: list[dict[str, Any]]) -> float:
    """The formula again, from what the response itself reports: each result's ranks and each
    search's polarity and weight."""
    by_name = {s["name"]: s for s in searches}
    total = 0.0
    for name, rank in result["ranks"].items():
        sign = -1 if by_name[name]["polarity"] == "negative" else 1
        total += sign * by_name[name]["weight"] / (K + rank)
    return total


def test_references_negatives_and_weights_fuse_by_the_formula(
    client: Client, corpus: Corpus
) -> None:
    harbor, vase = corpus.id_of("Harbor at Night"), corpus.id_of("Flowers in a Vase")
    madonna = corpus.id_of("Madonna and Child")
    weights = {"reference": 2.0, f"reference:{vase}": 0.5, "unlike": 3.0}
    body = {
        "inputs": {"references": [harbor, vase], "negatives": [madonna]},
        "weights": weights,
        "limit": 20,
    }
    data = ok(execute(client, body))
    positive = {
        f"reference:{harbor}": similar(corpus, harbor),
        f"reference:{vase}": similar(corpus, vase),
    }
    negative = {f"unlike:{madonna}": unlike(corpus, madonna)}
    # "reference" applies to every reference; the exact name "reference:<vase>" wins for it.
    applied = {f"reference:{harbor}": 2.0, f"reference:{vase}": 0.5, f"unlike:{madonna}": 3.0}
    expected = fuse_by_hand(positive, negative, applied)
    assert [r["artwork_id"] for r in data["results"]] == [item for item, _ in expected]
    assert [r["score"] for r in data["results"]] == pytest.approx(
        [score for _, score in expected], abs=1e-8
    )
    # The negative example demoted something: the order is not the positive lists' alone.
    assert [item for item, _ in fuse_by_hand(positive, {}, applied)] != [
        item for item, _ in expected
    ]
    assert any(score < 0 for _, score in expected)
    # What the positive searches found, and nothing else: the negative one only demotes.
    assert data["total"] == len(expected)
    stage = data["stages"][0]
    searches = stage["searches"]
    assert [(s["name"], s["polarity"], s["weight"], s["document_id"]) for s in searches] == [
        (f"reference:{harbor}", "positive", 2.0, harbor),
        (f"reference:{vase}", "positive", 0.5, vase),
        (f"unlike:{madonna}", "negative", 3.0, madonna),
    ]
    assert [s["list_cached"] for s in searches] == [False, False, False]
    assert (stage["num_features"], stage["searches_run"]) == (7, 3)
    # Each result's ranks hold the negative one too, and give its score.
    for result in data["results"]:
        assert result["score"] == pytest.approx(score_from_ranks(result, searches), abs=1e-8)
    assert any(f"unlike:{madonna}" in r["ranks"] for r in data["results"])


def test_reweighting_refuses_nothing_and_reuses_every_list(client: Client, corpus: Corpus) -> None:
    harbor, trees = corpus.id_of("Harbor at Night"), corpus.id_of("Study of Trees")
    storm = corpus.id_of("Storm at Sea")
    inputs = {"document_id": storm, "references": [harbor, trees]}
    first = ok(execute(client, {"inputs": inputs, "limit": 20}))
    assert not first["cache_hit"]
    weights = {"document": 0.25, f"reference:{trees}": 4}
    again = ok(execute(client, {"inputs": inputs, "weights": weights, "limit": 20}))
    # A new fused list (another key), from the three cached lists: nothing searched again.
    assert again["cache_hit"] is False
    searches = again["stages"][0]["searches"]
    assert [s["list_cached"] for s in searches] == [True, True, True]
    assert [(s["encode_ms"], s["knn_ms"]) for s in searches] == [(0.0, 0.0)] * 3
    assert [s["weight"] for s in searches] == [0.25, 1.0, 4.0]
    positive = {
        "document": similar(corpus, storm),
        f"reference:{harbor}": similar(corpus, harbor),
        f"reference:{trees}": similar(corpus, trees),
    }
    expected = fuse_by_hand(positive, {}, {"document": 0.25, f"reference:{trees}": 4.0})
    assert [r["artwork_id"] for r in again["results"]] == [item for item, _ in expected]
    unweighted = fuse_by_hand(positive, {}, {})
    assert [r["artwork_id"] for r in first["results"]] == [item for item, _ in unweighted]
    assert [item for item, _ in expected] != [item for item, _ in unweighted]
    # The same weights again: the fused list's own cache answers.
    assert ok(execute(client, {"inputs": inputs, "weights": weights, "limit": 20}))["cache_hit"]
    # A weight of 1 written out is the default: the first request's fused list.
    same = ok(execute(client, {"inputs": inputs, "weights": {"document": 1}, "limit": 20}))
    assert same["results"] == first["results"]


def test_a_negative_image_demotes_by_the_formula(
    client: Client, encoded_corpus: EncodedCorpus, aic_image_bytes: bytes
) -> None:
    corpus, text_vector, image_vector = encoded_corpus
    image = base64.b64encode(aic_image_bytes).decode()
    body = {
        "inputs": {"text": "a storm at sea", "negative_image": image},
        "weights": {"text": 1.5, "unlike-image": 0.75},
        "use_cache": False,
    }
    data = ok(execute(client, body))
    text_order = corpus.exact_ranking(text_vector)
    image_order = corpus.exact_ranking(image_vector)
    expected = fuse_by_hand(
        {"text": text_order}, {"unlike-image": image_order}, {"text": 1.5, "unlike-image": 0.75}
    )
    assert [r["artwork_id"] for r in data["results"]] == [item for item, _ in expected]
    assert [item for item, _ in expected] != text_order  # the negative example changed it
    assert [(s["name"], s["polarity"]) for s in data["stages"][0]["searches"]] == [
        ("text", "positive"),
        ("unlike-image", "negative"),
    ]
    # The same negative example as a multipart file part.
    multipart = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data={
            "inputs": json.dumps({"text": "a storm at sea"}),
            "weights": json.dumps({"text": 1.5, "unlike-image": 0.75}),
            "negative_image": SimpleUploadedFile("not.jpg", aic_image_bytes, "image/jpeg"),
        },
    )
    assert [r["artwork_id"] for r in ok(multipart)["results"]] == [item for item, _ in expected]
    both = client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data={
            "inputs": json.dumps({"text": "sea", "negative_image": image}),
            "negative_image": SimpleUploadedFile("not.jpg", aic_image_bytes, "image/jpeg"),
        },
    )
    assert error(both) == (422, "bad_request_body")
    assert "negative_image" in both.json()["detail"]


def test_bad_weights_are_refused_naming_the_problem(client: Client, corpus: Corpus) -> None:
    harbor = corpus.id_of("Harbor at Night")
    inputs = {"references": [harbor]}
    cases = [
        ({"text": 11}, "from 0 to 10"),
        ({"text": -1}, "from 0 to 10"),
        ({"text": "x"}, "weights.text"),
        ({"text": True}, "weights.text"),
        ({"colour": 1}, "reference, reference:<artwork id>"),
        ({"reference:abc": 1}, "'reference:abc'"),
        ({"text:5": 1}, "'text:5'"),
    ]
    for weights, words in cases:
        response = execute(client, {"inputs": inputs, "weights": weights})
        assert error(response) == (422, "bad_weight"), (weights, response.content)
        assert words in response.json()["detail"], (weights, response.json())
    # Python's json reads NaN and Infinity, which no JSON encoder writes: refused all the same.
    for value in ("NaN", "Infinity"):
        raw = f'{{"inputs": {{"references": [{harbor}]}}, "weights": {{"reference": {value}}}}}'
        assert error(execute(client, raw)) == (422, "bad_weight")
    # A reference not given this time is still a search of this retriever: no error.
    assert ok(execute(client, {"inputs": inputs, "weights": {"reference:999999": 2}}))["total"]


def test_bad_references_and_inputs(client: Client, corpus: Corpus, settings: Settings) -> None:
    harbor = corpus.id_of("Harbor at Night")
    seven = corpus.ids[:7]
    many = execute(client, {"inputs": {"references": seven}})
    assert error(many) == (422, "too_many_references")
    assert "7 reference artworks" in many.json()["detail"] and "at most 6" in many.json()["detail"]
    assert error(execute(client, {"inputs": {"text": "sea", "negatives": seven}})) == (
        422,
        "too_many_references",
    )
    settings.SEARCH_MAX_REFERENCES = 2
    assert error(execute(client, {"inputs": {"references": corpus.ids[:3]}}))[1] == (
        "too_many_references"
    )
    # A repeated id is one reference.
    assert (
        ok(execute(client, {"inputs": {"references": [harbor, harbor]}}))["stages"][0][
            "searches_run"
        ]
        == 1
    )
    unknown = execute(client, {"inputs": {"references": [harbor, 999_999]}})
    assert error(unknown) == (404, "unknown_artwork") and "999999" in unknown.json()["detail"]
    assert error(execute(client, {"inputs": {"negatives": [999_999], "document_id": harbor}})) == (
        404,
        "unknown_artwork",
    )
    # Negative examples alone find nothing to demote.
    alone = execute(client, {"inputs": {"negatives": [harbor]}})
    assert error(alone) == (400, "nothing_to_search")
    assert "only demote" in alone.json()["detail"]
    assert error(execute(client, {"inputs": {"references": [0]}})) == (422, "bad_request_body")


def test_the_openapi_document_states_the_new_bounds() -> None:
    from gallery.api import api

    operation = api.get_openapi_schema()["paths"]["/api/retrievers/{name}/execute"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["properties"]
    inputs = body["inputs"]["properties"]
    assert inputs["references"]["maxItems"] == inputs["negatives"]["maxItems"] == 6
    region = next(s for s in inputs["region"]["anyOf"] if s.get("type") == "object")
    assert (region["properties"]["x"]["minimum"], region["properties"]["x"]["maximum"]) == (0, 1)
    assert region["properties"]["width"]["exclusiveMinimum"] == 0
    weights = next(s for s in body["weights"]["anyOf"] if s.get("type") == "object")
    assert weights["additionalProperties"]["minimum"] == 0
    assert weights["additionalProperties"]["maximum"] == 10
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert form["negative_image"]["format"] == "binary"
    assert "negative_image" not in form["inputs"]["properties"]
