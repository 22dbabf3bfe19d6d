"""The retriever admin for curators, through Django's test client: the configuration shown
pretty-printed, an invalid one refused naming its field, and the "try it" panel checked with a
curator, a staff user without permissions and an anonymous visitor."""

from __future__ import annotations

import copy
import json

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from search.config import default_config
from search.models import Retriever
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def retriever() -> Retriever:
    found, _ = Retriever.objects.get_or_create(
        name="default", defaults={"config": default_config()}
    )
    return found


def change_data(retriever: Retriever, config: object) -> dict[str, str]:
    return {
        "name": retriever.name,
        "description": retriever.description,
        "config": json.dumps(config),
    }


def test_the_configuration_is_shown_indented(curator: Client, retriever: Retriever) -> None:
    html = curator.get(reverse("admin:search_retriever_change", args=[retriever.pk])).content
    assert b"\n  &quot;parameters&quot;: {\n" in html
    assert b'id="try-title"' in html


def test_an_invalid_configuration_is_refused_naming_its_field(
    curator: Client, retriever: Retriever
) -> None:
    config = copy.deepcopy(retriever.config)
    config["parameters"]["searches"][0]["top_k"] = "many"
    response = curator.post(
        reverse("admin:search_retriever_change", args=[retriever.pk]),
        change_data(retriever, config),
    )
    assert response.status_code == 200
    assert "parameters.searches.0.top_k" in response.content.decode()
    retriever.refresh_from_db()
    assert retriever.config["parameters"]["searches"][0]["top_k"] == 250


def test_a_curator_saves_a_valid_configuration(curator: Client, retriever: Retriever) -> None:
    config = copy.deepcopy(retriever.config)
    config["parameters"]["searches"][0]["top_k"] = 100
    response = curator.post(
        reverse("admin:search_retriever_change", args=[retriever.pk]),
        change_data(retriever, config),
    )
    assert response.status_code == 302
    retriever.refresh_from_db()
    assert retriever.config["parameters"]["searches"][0]["top_k"] == 100


def test_try_it_explains_an_artwork_without_a_vector(curator: Client, retriever: Retriever) -> None:
    url = reverse("admin:search_retriever_try", args=[retriever.pk])
    response = curator.post(url, {"artwork_id": "999999"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert 'class="errornote"' in response.content.decode()
    empty = curator.post(url, {}, headers={"HX-Request": "true"}).content.decode()
    assert "Give a text, an image or an artwork id to try." in empty


def test_others_cannot_try_or_change_a_retriever(retriever: Retriever) -> None:
    bare = User.objects.create_user("intern", password="not-used", is_staff=True)
    config = copy.deepcopy(retriever.config)
    config["parameters"]["searches"][0]["top_k"] = 1
    for client, status in ((client_for(None), 302), (client_for(bare), 403)):
        tried = client.post(
            reverse("admin:search_retriever_try", args=[retriever.pk]), {"text": "a storm"}
        )
        assert tried.status_code == status
        changed = client.post(
            reverse("admin:search_retriever_change", args=[retriever.pk]),
            change_data(retriever, config),
        )
        assert changed.status_code == status
    retriever.refresh_from_db()
    assert retriever.config["parameters"]["searches"][0]["top_k"] == 250
