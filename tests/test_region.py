"""Region search: a box on a stored artwork's original file or on the upload, cropped, encoded by
the image tower (the test SigLIP) and searched; crop vectors cached; bad boxes refused.

Expected orders come from the crop made here with Pillow and encoded here, ranked in numpy
against the corpus's vectors."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from PIL import Image

from gallery.images import sha256_bytes
from gallery.models import Artwork
from search.errors import BadRegion
from search.retriever import Region, RetrievalInputs, execute_retriever
from tests.fixtures.corpus import EncodedCorpus

pytestmark = pytest.mark.django_db

SIZE = (320, 240)
# On 320×240 these land on whole pixels: (80, 60) to (240, 180).
BOX = {"x": 0.25, "y": 0.25, "width": 0.5, "height": 0.5}
BOX_PIXELS = (80, 60, 240, 180)


@pytest.fixture
def picture(aic_image_bytes: bytes) -> bytes:
    """A real painting as a 320×240 PNG (decoded whole, so the crop's pixels are exact)."""
    image = Image.open(io.BytesIO(aic_image_bytes)).convert("RGB").resize(SIZE)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def crop_vector(picture: bytes, pixels: tuple[int, int, int, int]) -> np.ndarray:
    from search.encoder import get_encoder

    crop = Image.open(io.BytesIO(picture)).convert("RGB").crop(pixels)
    vector: np.ndarray = get_encoder().encode_images([crop])[0]
    return vector


def with_original(artwork_id: int, picture: bytes) -> Artwork:
    artwork = Artwork.objects.get(pk=artwork_id)
    artwork.image.save("original.png", ContentFile(picture), save=False)
    artwork.image_sha256 = sha256_bytes(picture)
    artwork.width, artwork.height = SIZE
    artwork.save()
    return artwork


def execute(client: Client, body: dict[str, Any]) -> Any:
    return client.post(
        reverse("api:retriever_execute", kwargs={"name": "default"}),
        data=json.dumps(body),
        content_type="application/json",
    )


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.content
    return [r["artwork_id"] for r in response.json()["results"]]


def test_a_region_of_an_artwork_and_of_the_upload(
    client: Client, encoded_corpus: EncodedCorpus, picture: bytes
) -> None:
    corpus, _, _ = encoded_corpus
    artwork = with_original(corpus.ids[3], picture)
    expected_vector = crop_vector(picture, BOX_PIXELS)
    whole_vector = crop_vector(picture, (0, 0, *SIZE))
    cosine = float(expected_vector @ whole_vector)  # both unit length
    assert cosine < 0.999  # the crop is another picture to the model
    expected = corpus.exact_ranking(expected_vector)

    on_artwork = execute(client, {"inputs": {"region": {**BOX, "document_id": artwork.pk}}})
    assert ids(on_artwork) == expected
    stage = on_artwork.json()["stages"][0]
    assert [(s["name"], s["input_mode"], s["document_id"]) for s in stage["searches"]] == [
        ("region", "content", artwork.pk)
    ]
    assert stage["searches"][0]["vector_cached"] is False

    # The same picture uploaded, the same box: the same crop, so the same order. The crop stands
    # for the picture: the whole-image content search does not run.
    upload = base64.b64encode(picture).decode()
    on_upload = execute(client, {"inputs": {"image": upload, "region": BOX}})
    assert ids(on_upload) == expected
    assert [s["name"] for s in on_upload.json()["stages"][0]["searches"]] == ["region"]
    assert [r["ranks"] for r in on_upload.json()["results"]][:2] == [{"region": 1}, {"region": 2}]
    # Without the region, the upload is searched whole.
    whole = execute(client, {"inputs": {"image": upload}, "use_cache": False})
    assert ids(whole) == corpus.exact_ranking(whole_vector)


def test_the_crop_vector_is_cached_and_the_file_not_read_again(
    encoded_corpus: EncodedCorpus, picture: bytes
) -> None:
    corpus, _, _ = encoded_corpus
    artwork = with_original(corpus.ids[0], picture)
    region = Region(**BOX, document_id=artwork.pk)
    first = execute_retriever(inputs=RetrievalInputs(region=region), use_cache=False)
    assert first.stages[0].searches[0].vector_cached is False
    # With the original gone, the same box (to 4 decimals) still searches: its vector is cached.
    assert artwork.image.name
    default_storage.delete(artwork.image.name)
    nudged = Region(x=0.25000001, y=0.25, width=0.5, height=0.5, document_id=artwork.pk)
    again = execute_retriever(inputs=RetrievalInputs(region=nudged), use_cache=False)
    assert again.stages[0].searches[0].vector_cached is True
    assert [r.artwork_id for r in again.results] == [r.artwork_id for r in first.results]
    # Another box needs the file.
    with pytest.raises(BadRegion, match="cannot be read"):
        execute_retriever(
            inputs=RetrievalInputs(region=Region(0.0, 0.0, 0.5, 0.5, document_id=artwork.pk)),
            use_cache=False,
        )
    # Re-weighting reuses the region's ranked list: no crop, no encoding, no kNN.
    text_and_region = RetrievalInputs(text="a storm at sea", region=nudged)
    execute_retriever(inputs=text_and_region)
    reweighted = execute_retriever(inputs=text_and_region, weights={"region": 3})
    assert [(s.name, s.list_cached, s.weight) for s in reweighted.stages[0].searches] == [
        ("text", True, 1.0),
        ("region", True, 3.0),
    ]


def test_bad_regions_are_refused(
    client: Client, encoded_corpus: EncodedCorpus, picture: bytes
) -> None:
    corpus, _, _ = encoded_corpus
    artwork = with_original(corpus.ids[1], picture)
    upload = base64.b64encode(picture).decode()
    bare = corpus.ids[2]  # no image file
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"region": {**BOX, "x": 0.9, "document_id": artwork.pk}}, 422, "bad_region", "x + width"),
        ({"region": {**BOX, "y": -0.1, "document_id": artwork.pk}}, 422, "bad_region", "inside"),
        ({"region": {**BOX, "width": 0, "document_id": artwork.pk}}, 422, "bad_region", "> 0"),
        ({"region": {**BOX, "x": 1.5, "document_id": artwork.pk}}, 422, "bad_region", "x=1.5"),
        # 0.04 of 320 is 13 pixels: under 16, and the message says so.
        ({"region": {**BOX, "width": 0.04, "document_id": artwork.pk}}, 422, "bad_region",
         "13×120 pixels of the 320×240 picture"),
        ({"image": upload, "region": {**BOX, "height": 0.05}}, 422, "bad_region",
         "160×12 pixels of the 320×240 picture"),
        ({"region": BOX}, 422, "bad_region", "needs the image"),
        ({"region": {**BOX, "document_id": bare}}, 422, "bad_region", "no image"),
        ({"region": {**BOX, "document_id": 999_999}}, 404, "unknown_artwork", "999999"),
        ({"region": {"x": 0.1, "y": 0.1, "width": "wide", "height": 0.2}}, 422,
         "bad_request_body", "region.width"),
    ]  # fmt: skip
    for inputs, status, code, words in cases:
        response = execute(client, {"inputs": inputs})
        assert (response.status_code, response.json()["code"]) == (status, code), inputs
        assert words in response.json()["detail"], (inputs, response.json())
    # Exactly 16 pixels is enough: 0.05 of 320.
    ok = execute(client, {"inputs": {"region": {**BOX, "width": 0.05, "document_id": artwork.pk}}})
    assert ok.status_code == 200, ok.content
