"""Template helpers for the gallery pages: sanitised descriptions, short artist names, and the
notice shown while the offline test encoder is in use."""

from __future__ import annotations

from urllib.parse import urlencode

import nh3
from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from gallery import selectors
from gallery.query import SearchQuery

register = template.Library()

# Curatorial text is HTML from outside (museum APIs, CSV files): only these survive.
ALLOWED_TAGS = {"p", "em", "strong", "i", "b", "br", "a"}
ALLOWED_ATTRIBUTES = {"a": {"href"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


@register.filter
def sanitize_html(value: str | None) -> SafeString:
    cleaned = nh3.clean(
        value or "",
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(cleaned)  # noqa: S308 - nh3 has removed everything not allowed above


@register.filter
def web_url(value: str | None) -> str:
    """`value` when it is an http(s) URL, else "": imported records are not validated as
    URLFields, and a "javascript:" link must not reach an href."""
    text = (value or "").strip()
    return text if text.lower().startswith(("http://", "https://")) else ""


@register.filter
def short_artist(value: str | None) -> str:
    """'Claude Monet (French, 1840–1926)' -> 'Claude Monet'."""
    return selectors.short_artist(value or "")


@register.filter
def artist_details(value: str | None) -> str:
    """'Claude Monet (French, 1840–1926)' -> 'French, 1840–1926' (empty when there are none)."""
    text = value or ""
    if " (" in text and text.endswith(")"):
        return text.split(" (", 1)[1][:-1]
    return ""


@register.simple_tag
def offline_test_encoder() -> bool:
    """True while searches use the small random-weight test model (its results mean nothing).

    Decided without loading a model (search.encoder.is_offline_test_model() would load one on
    every page of a fresh process): searches use the active feature's model, else the configured
    one, and the test model's folder carries a marker file."""
    from search.models import Feature
    from search.testmodel import is_test_model

    active = Feature.objects.filter(is_active=True).values_list("model_name", flat=True).first()
    return is_test_model(active or str(settings.GALLERY_EMBEDDING_MODEL))


@register.simple_tag
def find_similar_url(query: SearchQuery | None, artwork_id: int) -> str:
    """The search for artworks like `artwork_id`, keeping the page's filters (the text and any
    uploaded image are dropped: the visitor adds words to the new chip)."""
    base = query or SearchQuery()
    return base.but(similar=artwork_id, q="", upload="").url(reverse("home"))


@register.simple_tag
def artwork_url(artwork_id: int, search: SearchQuery | None = None, rank: int = 0) -> str:
    """The artwork's page; from a result, with the search and the result's rank, so that the page
    can lead back to the search and on to the previous and next results."""
    url = reverse("artwork", args=[artwork_id])
    if search is None or not rank:
        return url
    return f"{url}?{urlencode({**search.but().params(), 'rank': rank}, safe=',:')}"


@register.filter
def field_error(query: SearchQuery | None, name: str) -> str:
    """The message for the field `name` ("" when it is fine)."""
    return query.field_errors.get(name, "") if query else ""


@register.simple_tag
def page_url(query: SearchQuery, offset: int) -> str:
    return query.but(offset=offset).url(reverse("home"))


@register.simple_tag
def without_filters_url(query: SearchQuery) -> str:
    return query.but(
        classification="", artist="", year_from=None, year_to=None, source="", collection=""
    ).url(reverse("home"))
