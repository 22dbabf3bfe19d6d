"""The case study's three JSON blocks, verbatim (tests/fixtures/case_study/), run here.

A collection is created from its configuration, a few real paintings are imported into it and
embedded by the workers' own function (with the offline test model standing in for SigLIP base,
as everywhere in the tests), the retriever is created from its configuration, and the execute
call runs with text, with an image and with a document reference. Every expected order is
computed here, in NumPy, from the vectors stored in the database (cosine distance, then id) and
RRF written out by hand: nothing of the retriever's kNN or fusion code is reused.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.test import Client

from gallery.importers.aic import aic_records
from gallery.importers.common import ImportRecord, run_import
from gallery.models import Collection
from gallery.services import collection_create
from search.models import Embedding, Feature, Retriever
from tests.fixtures.corpus import clear_cache, paintings_dir
from tests.helpers import rrf_by_hand

pytestmark = pytest.mark.django_db

CASE_STUDY = Path(__file__).parent / "fixtures" / "case_study"
PAINTINGS = 6


def load(name: str) -> Any:
    return json.loads((CASE_STUDY / name).read_text())


@dataclass
class CaseStudy:
    collection: Collection
    retriever: Retriever
    ids: list[int]
    feature: Feature

    def stored(self) -> tuple[list[int], np.ndarray]:
        rows = Embedding.objects.filter(feature=self.feature).order_by("artwork_id")
        ids = [row.artwork_id for row in rows]
        vectors = np.stack([np.asarray(list(row.vector), dtype=np.float64) for row in rows])
        return ids, vectors

    def ranking(self, query: np.ndarray, *, exclude: int | None = None) -> list[int]:
        ids, vectors = self.stored()
        q = np.asarray(query, dtype=np.float64)
        sims = vectors @ q / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(q))
        rows = sorted((1.0 - float(s), i) for i, s in zip(ids, sims, strict=True) if i != exclude)
        return [artwork_id for _, artwork_id in rows]

    def vector_of(self, artwork_id: int) -> np.ndarray:
        ids, vectors = self.stored()
        return vectors[ids.index(artwork_id)]


def import_and_embed(*, collection: Collection | None, skip: int = 0, count: int) -> list[int]:
    from search.pipeline import embed_artworks

    records = aic_records(directory=paintings_dir())[skip : skip + count]
    report = run_import(source="aic", records=records, collection=collection)
    assert (report.created, report.failed) == (count, 0), report.summary()
    ids = [
        a.pk for a in (collection or Collection.objects.get(name="default")).artworks.order_by("pk")
    ]
    # The embedding workers' function, given only ids: the model comes from the collection.
    embedded = embed_artworks(ids=ids)
    assert embedded.failed == 0
    return ids


@pytest.fixture
def case_study(test_encoder_settings: Path) -> CaseStudy:
    clear_cache()
    collection = collection_create(name="paintings", config=load("collection.json"))
    ids = import_and_embed(collection=collection, count=PAINTINGS)
    retriever = Retriever.objects.create(name="case-study", config=load("retriever.json"))
    feature = Feature.objects.get(is_active=True)
    assert Embedding.objects.filter(feature=feature, artwork_id__in=ids).count() == PAINTINGS
    return CaseStudy(collection=collection, retriever=retriever, ids=ids, feature=feature)


def execute(client: Client, retriever: str | int, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        f"/api/retrievers/{retriever}/execute", data=body, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def order(payload: dict[str, Any]) -> list[int]:
    return [item["artwork_id"] for item in payload["results"]]


def query_image() -> bytes:
    """A painting not in the collection, made small (the upload path decodes it as it is)."""
    from PIL import Image

    record = aic_records(directory=paintings_dir())[PAINTINGS + 3]
    assert isinstance(record, ImportRecord) and record.fetch_image is not None, record
    image = Image.open(io.BytesIO(record.fetch_image())).convert("RGB")
    image.thumbnail((200, 200))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def test_the_case_study_json_runs_as_written(case_study: CaseStudy, client: Client) -> None:
    from gallery.images import load_image
    from search.encoder import get_encoder

    encoder = get_encoder()
    stage_keys = {
        "stage_name",
        "num_features",
        "searches_run",
        "fusion_strategy",
        "total_results",
        "duration_ms",
        "cache_hit",
    }

    # Text: the case study's own request body, by the retriever's id as in the case study.
    text = execute(client, case_study.retriever.pk, load("execute.json"))
    text_order = case_study.ranking(encoder.encode_texts(["dog outside"])[0])
    assert order(text) == text_order
    assert sorted(text_order) == sorted(case_study.ids)
    stage = text["stages"][0]
    assert stage_keys <= set(stage)
    # As the case study prints it: the stage's three searches, though only the text one ran
    # (the image and document searches were skipped for want of an input).
    assert (stage["stage_name"], stage["num_features"], stage["fusion_strategy"]) == (
        "feature_search",
        3,
        "rrf",
    )
    assert stage["searches_run"] == 1
    assert (stage["total_results"], stage["cache_hit"]) == (PAINTINGS, False)
    assert stage["duration_ms"] > 0
    assert [s["feature"] for s in stage["searches"]] == [case_study.feature.name]
    # The same call by name, and again: the cache answers.
    again = execute(client, case_study.retriever.name, load("execute.json"))
    assert order(again) == text_order
    assert again["stages"][0]["cache_hit"] is True and again["cache_hit"] is True

    # Image.
    image_bytes = query_image()
    image_vector = encoder.encode_images([load_image(image_bytes).image])[0]
    image = execute(
        client,
        case_study.retriever.pk,
        {"inputs": {"image": base64.b64encode(image_bytes).decode()}},
    )
    image_order = case_study.ranking(image_vector)
    assert order(image) == image_order
    assert image["stages"][0]["searches"][0]["input_mode"] == "content"

    # A document reference, the case study's nested inputs.
    anchor = case_study.ids[2]
    doc_ref = {"collection_id": case_study.collection.name, "document_id": anchor}
    document = execute(client, case_study.retriever.pk, {"inputs": {"doc_ref": doc_ref}})
    document_order = case_study.ranking(case_study.vector_of(anchor), exclude=anchor)
    assert order(document) == document_order
    assert anchor not in order(document)
    by_id = execute(
        client,
        case_study.retriever.pk,
        {"inputs": {"doc_ref": {"collection_id": case_study.collection.pk, "document_id": anchor}}},
    )
    assert order(by_id) == document_order
    # The bare document_id input fills the same template.
    bare = execute(client, case_study.retriever.name, {"inputs": {"document_id": anchor}})
    assert order(bare) == document_order

    # All three, fused by RRF (k = 60).
    fused = execute(
        client,
        case_study.retriever.pk,
        {
            "inputs": {
                "text": "dog outside",
                "image": base64.b64encode(image_bytes).decode(),
                "doc_ref": doc_ref,
            }
        },
    )
    assert order(fused) == rrf_by_hand(text_order, image_order, document_order)
    stage = fused["stages"][0]
    assert (stage["num_features"], stage["searches_run"], stage["total_results"]) == (
        3,
        3,
        PAINTINGS,
    )
    assert [s["input_mode"] for s in stage["searches"]] == ["text", "content", "document"]
    top = fused["results"][0]
    assert top["score"] == pytest.approx(
        sum(1 / (60 + ranking.index(top["artwork_id"]) + 1)
            for ranking in (text_order, image_order, document_order)
            if top["artwork_id"] in ranking)
    )  # fmt: skip


def test_a_document_of_another_collection_is_refused(case_study: CaseStudy, client: Client) -> None:
    other = Collection.objects.create(name="prints")
    response = client.post(
        f"/api/retrievers/{case_study.retriever.pk}/execute",
        data={
            "inputs": {"doc_ref": {"collection_id": other.name, "document_id": case_study.ids[0]}}
        },
        content_type="application/json",
    )
    assert response.status_code == 404
    assert "not in the collection 'prints'" in response.json()["detail"]


def test_find_similar_works_across_collections(case_study: CaseStudy, client: Client) -> None:
    """Both collections use the same extractor, so their vectors share one feature: a document
    of one collection finds artworks of the other, unless the collection filter says not to."""
    others = import_and_embed(collection=None, skip=PAINTINGS, count=3)
    anchor = case_study.ids[0]
    everything = case_study.ranking(case_study.vector_of(anchor), exclude=anchor)
    assert set(others) <= set(everything)
    body: dict[str, Any] = {"inputs": {"doc_ref": {"document_id": anchor}}}
    assert order(execute(client, case_study.retriever.pk, body)) == everything
    default_only = execute(
        client, case_study.retriever.pk, {**body, "filters": {"collection": "default"}}
    )
    assert order(default_only) == [i for i in everything if i in others]
    # The default retriever ("feature": "active") sees the same feature.
    assert order(execute(client, "default", {"inputs": {"document_id": anchor}})) == everything


def test_unknown_retriever_by_name_or_id(db: None, client: Client) -> None:
    response = client.post(
        "/api/retrievers/987654/execute",
        data={"inputs": {"text": "x"}},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert "987654" in response.json()["detail"]


def test_the_api_documentation_shows_the_case_study_examples() -> None:
    from gallery.api import api

    operation = api.get_openapi_schema()["paths"]["/api/retrievers/{name}/execute"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert examples["text"]["value"] == load("execute.json")
    assert set(examples) >= {"text", "image", "doc_ref"}
    assert examples["doc_ref"]["value"]["inputs"]["doc_ref"].keys() == {
        "collection_id",
        "document_id",
    }
    response = operation["responses"][200]["content"]["application/json"]["examples"]["text"]
    stage = response["value"]["stages"][0]
    assert load("stage.json").items() <= stage.items()  # as printed, num_features 3 included
    assert (stage["searches_run"], len(stage["searches"])) == (1, 1)  # only the text ran
    assert "by name or id" in operation["summary"]
    # The documented request validates against the endpoint's own schema.
    from search.schemas import ExecuteIn

    for example in examples.values():
        ExecuteIn.model_validate(example["value"])


def test_the_commands_take_the_json_files_as_printed(db: None, tmp_path: Path) -> None:
    import io

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("create_collection", "paintings", str(CASE_STUDY / "collection.json"), stdout=out)
    call_command("create_retriever", "case-study", str(CASE_STUDY / "retriever.json"), stdout=out)
    retriever = Retriever.objects.get(name="case-study")
    assert retriever.config == load("retriever.json")
    assert f"/api/retrievers/{retriever.pk}/execute" in out.getvalue()
    assert (
        Collection.objects.get(name="paintings").feature_extractor
        == (load("collection.json")["feature_extractor"])
    )
    with pytest.raises(CommandError, match="exists already"):
        call_command("create_collection", "paintings", str(CASE_STUDY / "collection.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"feature_extractor": {"feature_extractor_name": "image_extractor"}}')
    with pytest.raises(CommandError, match="feature_extractor.parameters: Field required"):
        call_command("create_collection", "other", str(bad))
    unknown = tmp_path / "unknown.json"
    unknown.write_text((CASE_STUDY / "retriever.json").read_text().replace("@v1", "@v7"))
    with pytest.raises(CommandError, match="no collection has the feature"):
        call_command("create_retriever", "other", str(unknown))
    assert not Retriever.objects.filter(name="other").exists()
