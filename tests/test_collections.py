"""Collections and their feature extractors, feature URIs, and the configuration forms the case
study uses (skip_if_empty, nested document references)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from gallery.extractors import ExtractorConfigError, default_extractor
from gallery.models import Artwork, Collection
from gallery.services import collection_create
from search.config import ConfigError, parse_config
from search.models import Retriever

pytestmark = pytest.mark.django_db

CASE_STUDY = Path(__file__).parent / "fixtures" / "case_study"
URI = "mixpeek://image_extractor@v1/google_siglip_base_v1"


def load(name: str) -> Any:
    return json.loads((CASE_STUDY / name).read_text())


# Collections ------------------------------------------------------------------------------------
def test_every_artwork_belongs_to_a_collection(db: None) -> None:
    artwork = Artwork.objects.create(source="local", external_id="a", title="A")
    assert artwork.collection.name == "default"
    default = Collection.objects.get(name="default")
    assert default.feature_extractor == default_extractor()
    assert default.extractor.parameters.model == "siglip-base-patch16-224"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.update(feature_extractor_name="audio_extractor"),
         "feature_extractor.feature_extractor_name"),
        (lambda e: e.update(version="1"), "feature_extractor.version"),
        (lambda e: e.update(input_mappings={"image": "thumbnail"}),
         "feature_extractor.input_mappings"),
        (lambda e: e["parameters"].pop("model"), "feature_extractor.parameters.model"),
        (lambda e: e["parameters"].update(model="  "), "feature_extractor.parameters.model"),
        (lambda e: e["parameters"].update(generate_thumbnail="sometimes"),
         "feature_extractor.parameters.generate_thumbnail"),
        (lambda e: e.update(colour="blue"), "feature_extractor.colour"),
    ],
)  # fmt: skip
def test_invalid_extractors_are_refused_naming_the_field(change, message: str) -> None:
    from gallery.admin import CollectionAdminForm

    extractor = default_extractor()
    change(extractor)
    with pytest.raises(ExtractorConfigError, match=message.replace(".", r"\.")):
        collection_create(name="bad", config={"feature_extractor": extractor})
    with pytest.raises(ValidationError, match=message.replace(".", r"\.")):
        Collection(name="bad", feature_extractor=extractor).save()
    form = CollectionAdminForm(
        data={"name": "bad", "description": "", "feature_extractor": json.dumps(extractor)}
    )
    assert not form.is_valid()
    assert message in str(form.errors["feature_extractor"])
    assert not Collection.objects.filter(name="bad").exists()


def test_the_admin_takes_the_case_study_json_as_printed(admin_client: Client) -> None:
    pasted = json.dumps(load("collection.json"))
    response = admin_client.post(
        "/admin/gallery/collection/add/",
        {"name": "paintings", "description": "", "feature_extractor": pasted},
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    created = Collection.objects.get(name="paintings")
    assert created.feature_extractor == load("collection.json")["feature_extractor"]
    listing = admin_client.get("/admin/gallery/collection/")
    assert b"gallery://image_extractor@v1/google_siglip_base_v1" in listing.content
    assert b"image_extractor@v1 (siglip-base-patch16-224)" in listing.content


def test_a_changed_model_gets_a_new_version(admin_client: Client) -> None:
    Collection.objects.filter(name="default").delete()  # the only v1 left would be its own
    collection = collection_create(name="paintings", config=load("collection.json"))
    retriever = Retriever.objects.create(name="case-study", config=load("retriever.json"))
    changed = copy.deepcopy(collection.feature_extractor)
    changed["parameters"]["model"] = "google/siglip-so400m-patch14-384"
    response = admin_client.post(
        f"/admin/gallery/collection/{collection.pk}/change/",
        {"name": "paintings", "description": "", "feature_extractor": json.dumps(changed)},
        follow=True,
    )
    assert response.status_code == 200
    assert "now version v2" in response.content.decode()
    collection.refresh_from_db()
    assert collection.extractor.version == "v2"
    assert collection.extractor.feature == "google_siglip_so400m_patch14_384"
    # The v1 URI now names no collection's feature: saving a retriever with it is refused...
    with pytest.raises(ValidationError, match="no collection has the feature"):
        retriever.save()
    # ...while the new URI is accepted. An edit that keeps the model keeps the version.
    config = json.loads(
        json.dumps(load("retriever.json")).replace(
            URI, "mixpeek://image_extractor@v2/google_siglip_so400m_patch14_384"
        )
    )
    Retriever.objects.create(name="so400m", config=config)
    collection.description = "renamed"
    collection.save()
    assert collection.extractor.version == "v2"


# Feature URIs and the case study's configuration forms -----------------------------------------
def test_the_case_study_retriever_needs_a_collection_with_its_feature(db: None) -> None:
    Collection.objects.all().delete()  # no collection at all
    with pytest.raises(ValidationError) as info:
        Retriever(name="case-study", config=load("retriever.json")).save()
    message = str(info.value)
    assert "parameters.searches.0.feature_uri: no collection has the feature " + URI in message
    collection_create(name="paintings", config=load("collection.json"))
    Retriever(name="case-study", config=load("retriever.json")).save()


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("mixpeek://image_extractor@v1/google_siglip_large", "no collection has the feature"),
        ("mixpeek://image_extractor@v9/google_siglip_base_v1", "no collection has the feature"),
        ("mixpeek://text_extractor@v1/google_siglip_base_v1", "no collection has the feature"),
        ("https://image_extractor@v1/google_siglip_base_v1", "unknown scheme 'https'"),
        ("image_extractor/google_siglip_base_v1", "is not a feature URI"),
    ],
)
def test_unknown_feature_uris_are_refused_at_save_time(db: None, uri: str, message: str) -> None:
    from search.admin_retrievers import RetrieverForm

    config = json.loads(json.dumps(load("retriever.json")).replace(URI, uri))
    with pytest.raises(ValidationError, match=message):
        Retriever(name="bad", config=config).save()
    form = RetrieverForm(data={"name": "bad", "description": "", "config": json.dumps(config)})
    assert not form.is_valid()
    assert any(message in error for error in form.errors["config"])
    # Our own scheme resolves like the case study's.
    own = json.loads(json.dumps(load("retriever.json")).replace("mixpeek://", "gallery://"))
    Retriever(name="own", config=own).save()


def test_skip_if_empty_is_on_empty() -> None:
    config = load("retriever.json")
    searches = config["parameters"]["searches"]
    for search in searches:
        del search["on_empty"]
    searches[0]["skip_if_empty"] = True
    searches[1]["skip_if_empty"] = False
    parsed = parse_config(config).parameters.searches
    assert [s.on_empty for s in parsed] == ["skip", "error", "skip"]
    searches[0]["on_empty"] = "error"
    with pytest.raises(ConfigError, match="contradicts"):
        parse_config(config)
    searches[0]["on_empty"] = "skip"
    searches[0]["skip_if_empty"] = "yes"
    with pytest.raises(ConfigError, match="true or false"):
        parse_config(config)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({"collection_id": "{{INPUT.doc_ref.collection_id}}", "document_id": "{{INPUT.id}}"},
         "document_ref.document_id"),
        ({"collection_id": "{{INPUT.doc_ref.no}}", "document_id": "{{INPUT.doc_ref.document_id}}"},
         "document_ref.collection_id"),
        ({"collection_id": "paintings"}, "document_id"),
        ({"document_id": "{{INPUT.doc_ref.document_id}}", "extra": 1}, "extra"),
        ("{{INPUT.doc_ref.collection_id}}", "document_ref"),
    ],
)  # fmt: skip
def test_bad_document_references_are_refused(ref: Any, message: str) -> None:
    config = load("retriever.json")
    config["parameters"]["searches"][2]["query"]["document_ref"] = ref
    with pytest.raises(ConfigError, match=message):
        parse_config(config)


def test_document_reference_forms() -> None:
    config = load("retriever.json")
    query = config["parameters"]["searches"][2]["query"]
    for ref in (
        "{{INPUT.document_id}}",
        "{{INPUT.doc_ref.document_id}}",
        17,
        {"document_id": "{{INPUT.document_id}}"},
        {"collection_id": "paintings", "document_id": 17},
    ):
        query["document_ref"] = ref
        parse_config(config)
    # "feature": "active" keeps working beside feature URIs, but not both on one search.
    config["parameters"]["searches"][0] = {
        **config["parameters"]["searches"][0],
        "feature": "active",
    }
    with pytest.raises(ConfigError, match="not both"):
        parse_config(config)
    del config["parameters"]["searches"][0]["feature_uri"]
    parse_config(config)


# A collection with a model of its own ----------------------------------------------------------
def test_a_collection_of_another_model_is_embedded_and_searched_with_it(
    test_encoder_settings: Path, second_test_model_dir: Path, client: Client
) -> None:
    """The embedding workers take the model from the artwork's collection: the default
    collection's paintings get the configured model's vectors, the other collection's the
    other model's, each under its own feature, and a feature URI searches the latter."""
    from gallery.importers.aic import aic_records
    from gallery.importers.common import run_import
    from search.encoder import get_encoder
    from search.models import Embedding, Feature
    from search.pipeline import embed_artworks
    from tests.fixtures.corpus import clear_cache, paintings_dir

    clear_cache()
    extractor = default_extractor()
    extractor["parameters"]["model"] = str(second_test_model_dir)
    other = collection_create(name="seed-one", config={"feature_extractor": extractor})
    records = aic_records(directory=paintings_dir())
    run_import(source="aic", records=records[:3], collection=None)
    run_import(source="aic", records=records[3:7], collection=other)
    ids = list(Artwork.objects.order_by("pk").values_list("pk", flat=True))
    report = embed_artworks(ids=ids)
    assert (report.embedded, report.failed) == (7, 0)

    configured = get_encoder()
    own = get_encoder(str(second_test_model_dir))
    assert own.feature_name != configured.feature_name
    by_feature = {
        name: sorted(
            Embedding.objects.filter(feature__name=name).values_list("artwork_id", flat=True)
        )
        for name in (configured.feature_name, own.feature_name)
    }
    assert by_feature[configured.feature_name] == sorted(
        Collection.objects.get(name="default").artworks.values_list("pk", flat=True)
    )
    assert by_feature[own.feature_name] == sorted(other.artworks.values_list("pk", flat=True))
    assert Feature.objects.get(is_active=True).name == configured.feature_name

    uri = "gallery://image_extractor@v1/test_model_seed1"
    assert other.extractor.feature == "test_model_seed1"
    config = json.loads(json.dumps(load("retriever.json")).replace(URI, uri))
    retriever = Retriever.objects.create(name="seed-one", config=config)
    response = client.post(
        f"/api/retrievers/{retriever.pk}/execute",
        data={"inputs": {"text": "a dog"}},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    rows = Embedding.objects.filter(feature__name=own.feature_name)
    vectors = {row.artwork_id: np.asarray(list(row.vector), dtype=np.float64) for row in rows}
    query = own.encode_texts(["a dog"])[0].astype(np.float64)
    expected = sorted(
        vectors,
        key=lambda a: (
            1 - vectors[a] @ query / np.linalg.norm(vectors[a]) / np.linalg.norm(query),
            a,
        ),
    )
    assert [item["artwork_id"] for item in response.json()["results"]] == expected
    assert response.json()["stages"][0]["searches"][0]["feature"] == own.feature_name


# The data migration -----------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_moves_artworks_into_the_default_collection_keeping_their_vectors() -> None:
    """Back to the schema before collections, an artwork and its vector are written there; the
    migration forward puts the artwork in the default collection and leaves the vector row as
    it was (same id, same numbers, same image hash): nothing is re-embedded."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate([("gallery", "0001_initial")])
    vector = "[" + ",".join(["0.5", "0.25"] + ["0"] * 766) + "]"
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO gallery_artwork (source, external_id, title, artist, display_date,"
            " medium, dimensions, classification, credit_line, description, alt_text,"
            " source_url, license, image, thumbnail, image_sha256, created_at, updated_at)"
            " VALUES ('aic', '866', 'Helena', '', '', '', '', '', '', '', '', '', '',"
            " 'originals/x.jpg', '', 'abc', now(), now()) RETURNING id"
        )
        artwork_id = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO search_feature (name, model_name, dimensions, is_active, created_at)"
            " VALUES ('before@v1', 'm', 768, true, now()) RETURNING id"
        )
        feature_id = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO search_embedding (artwork_id, feature_id, vector, image_sha256,"
            " created_at) VALUES (%s, %s, %s::halfvec, 'abc', now()) RETURNING id, created_at",
            [artwork_id, feature_id, vector],
        )
        embedding_id, created_at = cur.fetchone()

    executor = MigrationExecutor(connection)
    executor.migrate(leaves)

    from search.models import Embedding

    artwork = Artwork.objects.get(pk=artwork_id)
    assert artwork.collection.name == "default"
    assert artwork.collection.extractor.parameters.model == "siglip-base-patch16-224"
    embedding = Embedding.objects.get(artwork_id=artwork_id)
    assert (embedding.pk, embedding.feature_id, embedding.image_sha256) == (
        embedding_id,
        feature_id,
        "abc",
    )
    assert embedding.created_at == created_at
    assert list(embedding.vector)[:3] == [0.5, 0.25, 0.0]


def test_the_artworks_list_filters_by_collection(client: Client) -> None:
    prints = Collection.objects.create(name="prints")
    Artwork.objects.create(source="local", external_id="a", title="In default")
    Artwork.objects.create(source="local", external_id="a", title="In prints", collection=prints)
    for value in ("prints", str(prints.pk)):
        response = client.get("/api/artworks", {"collection": value})
        assert response.status_code == 200, response.content
        assert [item["title"] for item in response.json()["items"]] == ["In prints"]
    response = client.get("/api/artworks", {"collection": "default"})
    assert [item["title"] for item in response.json()["items"]] == ["In default"]


def test_a_collection_whose_model_cannot_load_does_not_stop_the_others(
    test_encoder_settings: Path,
) -> None:
    from gallery.importers.aic import aic_records
    from gallery.importers.common import run_import
    from search.models import Embedding
    from search.pipeline import embed_artworks
    from tests.fixtures.corpus import paintings_dir

    extractor = default_extractor()
    extractor["parameters"]["model"] = "/nonexistent/siglip-folder"
    broken = collection_create(name="broken", config={"feature_extractor": extractor})
    records = aic_records(directory=paintings_dir())
    run_import(source="aic", records=records[:2], collection=broken)
    run_import(source="aic", records=records[2:4], collection=None)
    ids = list(Artwork.objects.order_by("pk").values_list("pk", flat=True))
    report = embed_artworks(ids=ids)
    assert (report.embedded, report.failed) == (2, 2)
    broken_ids = set(broken.artworks.values_list("pk", flat=True))
    assert set(report.failures) == broken_ids
    assert all("does not exist" in reason for reason in report.failures.values())
    assert set(Embedding.objects.values_list("artwork_id", flat=True)) == set(ids) - broken_ids
