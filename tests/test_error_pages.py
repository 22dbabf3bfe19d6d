"""Error answers that need nothing: styled pages that render without the database, JSON under
/api/, with DEBUG off (as pytest-django runs every test, and as production runs).

A bug cannot be produced on purpose in working code, so the 500 tests make one function a view
calls raise (monkeypatch): everything around it is the real request path."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.test import Client
from pytest_django import DjangoAssertNumQueries, Settings

from tests.helpers import jpeg_bytes

pytestmark = pytest.mark.django_db


def _boom(*_: object, **__: object) -> None:
    raise RuntimeError("a bug")


def _database_gone(*_: object, **__: object) -> None:
    raise OperationalError("connection to server failed: the database system is shutting down")


def _assert_styled_page(html: str) -> None:
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert re.search(r'<link rel="stylesheet" href="/static/gallery/gallery\.css', html)
    assert '<a href="/">Back to the search page</a>' in html
    assert "<script>" not in html  # the CSP forbids inline scripts; retry.js is a file


def test_an_unexpected_error_is_a_styled_500_page(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    assert settings.DEBUG is False
    monkeypatch.setattr("gallery.views.search_page", _boom)
    client = Client(raise_request_exception=False)

    response = client.get("/?q=boats")

    assert response.status_code == 500
    html = response.content.decode()
    _assert_styled_page(html)
    assert "Something went wrong" in html
    assert 'href="/?q=boats">Try again</a>' in html
    assert "a bug" not in html  # no internals shown


def test_an_unexpected_error_under_the_api_is_json_in_the_documented_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("gallery.routers.filter_artworks", _boom)
    client = Client(raise_request_exception=False)

    response = client.get("/api/artworks")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "server_error"
    assert "a bug" not in body["detail"]


def test_the_503_page_renders_without_the_database(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    """The page itself runs no query: with the database down it would fail and come out as
    unstyled text (base.html's notice queries the database)."""
    monkeypatch.setattr("gallery.views.search_page", _database_gone)
    client = Client(raise_request_exception=False)

    with django_assert_num_queries(0):
        response = client.get("/?q=boats")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    html = response.content.decode()
    _assert_styled_page(html)
    assert "Temporarily unavailable" in html
    assert 'data-retry-after="5"' in html
    assert re.search(r'<script src="/static/gallery/retry\.js[^"]*" defer></script>', html)


def test_a_503_under_the_api_is_json_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gallery.routers.filter_artworks", _database_gone)
    client = Client(raise_request_exception=False)

    response = client.get("/api/artworks")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert set(body) == {"detail", "code"}


def test_a_failed_post_offers_no_automatic_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reloading would send the form again: the page links home instead."""
    monkeypatch.setattr("gallery.views.upload_store", _database_gone)
    client = Client(raise_request_exception=False)

    image = SimpleUploadedFile("red.jpg", jpeg_bytes(), content_type="image/jpeg")
    response = client.post("/uploads/", {"image": image})

    assert response.status_code == 503
    html = response.content.decode()
    _assert_styled_page(html)
    assert "data-retry-after" not in html and "Try again" not in html
