"""The gallery pages through Django's test client: URL state, HTMX partials, uploads, the
artwork page, sanitising, and markup a strict Content-Security-Policy accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gallery.models import Artwork
from gallery.query import SearchQuery
from gallery.services import artwork_upsert
from tests.fixtures.corpus import Corpus
from tests.helpers import ALL_PAINTINGS, import_and_embed_aic, jpeg_bytes, needs_all_paintings

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "search"}


def card_ids(html: str) -> list[int]:
    return [int(value) for value in re.findall(r'data-artwork-id="(\d+)"', html)]


# --- the URL state ------------------------------------------------------------------------------


def test_query_round_trips_through_its_url() -> None:
    query = SearchQuery.from_params(
        {"q": "  a  woman\n reading ", "similar": "12", "year_from": "1600", "offset": "24"}
    )
    assert query == SearchQuery(q="a woman reading", similar=12, year_from=1600, offset=24)
    assert query.url() == "/?q=a+woman+reading&similar=12&year_from=1600&offset=24"
    assert SearchQuery.from_params(dict(p.split("=") for p in query.url()[2:].split("&"))) == (
        SearchQuery(q="a+woman+reading", similar=12, year_from=1600, offset=24)
    )
    # Any change but paging starts from the first page again.
    assert query.but(q="x").offset == 0
    assert query.but(offset=48).offset == 48


def test_malformed_link_values_are_dropped_not_refused() -> None:
    query = SearchQuery.from_params({"similar": "-3", "upload": "../../etc/passwd", "offset": "x"})
    assert query == SearchQuery()
    assert query.url() == "/"


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"year_to": "soon"}, "year_to", "The end year “soon” is not a year"),
        ({"year_from": "18.5"}, "year_from", "The start year “18.5” is not a year"),
        ({"year_from": "99999"}, "year_from", "must be between -10000 and 10000"),
        ({"year_from": "1900", "year_to": "1800"}, "year_to", "(1800) is before the start year"),
        ({"q": "a\x00b"}, "q", "The search text contains a control character (U+0000)"),
        ({"artist": "x\x07"}, "artist", "The artist contains a control character (U+0007)"),
    ],
)
def test_typed_values_that_cannot_be_searched_are_reported_by_field(
    params: dict[str, str], field: str, message: str
) -> None:
    query = SearchQuery.from_params(params)
    assert list(query.field_errors) == [field]
    assert message in query.field_errors[field]


def test_text_is_cut_at_the_retrievers_limit(settings: Any) -> None:
    query = SearchQuery.from_params({"q": "x" * (settings.SEARCH_MAX_TEXT_CHARS + 50)})
    assert len(query.q) == settings.SEARCH_MAX_TEXT_CHARS and not query.errors


# --- browsing and filters -----------------------------------------------------------------------


def test_landing_page_browses_the_collection(client: Any, corpus: Corpus) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "The collection · 10 artworks" in html
    assert len(card_ids(html)) == 10
    # The text search is a plain GET form: it works without JavaScript.
    assert re.search(r'<form id="search-form"[^>]*action="/"[^>]*method="get"', html)


def test_filters_apply_while_browsing(client: Any, corpus: Corpus) -> None:
    html = client.get("/?classification=drawing&artist=turner").content.decode()
    assert card_ids(html) == [corpus.id_of("Sea Study")]
    html = client.get("/?year_from=1800&year_to=1850").content.decode()
    expected = {corpus.id_of(t) for t in ("Storm at Sea", "Sea Study", "Winter Landscape")}
    assert set(card_ids(html)) == expected
    assert "3 artworks match the filters" in html


def test_collection_filter_shows_from_two_collections(client: Any, corpus: Corpus) -> None:
    from gallery.models import Collection

    assert 'id="f-collection"' not in client.get("/").content.decode()  # one: no choice
    prints = Collection.objects.create(name="prints")
    Artwork.objects.filter(pk=corpus.id_of("Sea Study")).update(collection=prints)
    html = client.get("/?collection=prints").content.decode()
    assert card_ids(html) == [corpus.id_of("Sea Study")]
    assert '<option value="prints" selected>prints</option>' in html


def test_inverted_year_range_is_a_message_beside_the_field(client: Any, corpus: Corpus) -> None:
    page = client.get("/?year_from=1900&year_to=1800")
    assert page.status_code == 422
    html = page.content.decode()
    assert re.search(
        r'<p id="year_to-error" class="field-error" data-field="year_to">'
        r"The end year \(1800\) is before the start year \(1900\)",
        html,
    )
    assert "data-artwork-id" not in html  # nothing was searched


# --- searching ----------------------------------------------------------------------------------


def test_find_similar_lists_neighbours_without_the_reference(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Harbor at Night")
    html = client.get(f"/?similar={reference}").content.decode()
    expected = corpus.exact_ranking(corpus.vectors[corpus.ids.index(reference)], exclude=reference)
    assert card_ids(html) == expected
    assert "Like <a href" in html and "Harbor at Night" in html  # the chip
    # The chip's remove link drops only the reference.
    assert re.search(r'class="chip-remove" href="/"', html)


def test_find_similar_with_filters_keeps_them(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Storm at Sea")
    html = client.get(f"/?similar={reference}&classification=Painting").content.decode()
    paintings = [i for i, r in zip(corpus.ids, _records(), strict=True) if r[2] == "Painting"]
    expected = corpus.exact_ranking(corpus.vectors[0], exclude=reference, among=paintings)
    assert card_ids(html) == expected
    # "Find similar" on a card keeps the filters and drops the text.
    other = expected[0]
    assert f'href="/?similar={other}&amp;classification=Painting"' in html


def test_unknown_reference_is_a_notice(client: Any, corpus: Corpus) -> None:
    html = client.get("/?similar=999999").content.decode()
    assert "There is no artwork 999999 in the collection." in html
    assert "The collection · 10 artworks" in html  # it falls back to browsing


def test_search_before_embedding_explains_itself(client: Any) -> None:
    artwork = Artwork.objects.create(source="local", external_id="x", title="Lonely")
    page = client.get(f"/?similar={artwork.pk}")
    assert page.status_code == 409
    assert "cannot run yet" in page.content.decode()


# --- HTMX ---------------------------------------------------------------------------------------


def test_htmx_request_gets_the_search_partial_and_a_clean_url(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Storm at Sea")
    page = client.get(f"/?q=&similar={reference}&classification=&artist=", **HTMX)
    html = page.content.decode()
    assert page.status_code == 200
    # The title names the search (htmx takes a root <title> from a partial), then the area.
    assert re.match(
        r"\s*<title>Like “Storm at Sea” · Artwork search</title>\s*<div id=\"search\"", html
    )
    assert "<html" not in html and "<header" not in html
    assert page["HX-Push-Url"] == f"/?similar={reference}"
    assert "HX-Request" in page["Vary"]


def test_htmx_load_more_gets_cards_and_an_out_of_band_button(
    client: Any, corpus: Corpus, settings: Any
) -> None:
    settings.GALLERY_PAGE_SIZE = 4
    reference = corpus.id_of("Storm at Sea")
    expected = corpus.exact_ranking(corpus.vectors[0], exclude=reference)
    page = client.get(
        f"/?similar={reference}&offset=4", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="result-list"
    )
    html = page.content.decode()
    assert card_ids(html) == expected[4:8]
    assert '<div id="more" class="more" hx-swap-oob="true">' in html
    assert "offset=8" in html
    assert "<form" not in html and "HX-Push-Url" not in page


def test_htmx_load_more_skips_the_filter_choices(client: Any, corpus: Corpus) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        page = client.get("/?offset=4", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="result-list")
    assert page.status_code == 200
    assert not [q for q in queries.captured_queries if "DISTINCT" in q["sql"]]


def test_htmx_errors_are_swapped_in_with_status_200(client: Any, corpus: Corpus) -> None:
    page = client.get("/?year_from=1900&year_to=1800", **HTMX)
    assert page.status_code == 200  # htmx does not swap 4xx responses
    assert "is before the start year" in page.content.decode()


def test_history_restore_gets_the_whole_page(client: Any, corpus: Corpus) -> None:
    page = client.get(
        f"/?similar={corpus.ids[0]}",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="search",
        HTTP_HX_HISTORY_RESTORE_REQUEST="true",
    )
    assert "<html" in page.content.decode()


def test_htmx_search_from_the_form_swaps_the_results_not_the_fields(
    client: Any, corpus: Corpus
) -> None:
    page = client.get(
        "/?q=sea&artist=turner&year_from=18x", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert re.match(r"\s*<title>“sea” · Artwork search</title>\s*<section id=\"results\"", html)
    assert "<form" not in html and "<input" not in html and "<select" not in html
    # Beside the fields: their messages and the filter count, out of band.
    assert re.search(
        r'<p id="year_from-error" class="field-error" data-field="year_from" '
        r'hx-swap-oob="true">The start year “18x” is not a year',
        html,
    )
    assert (
        '<p id="artist-error" class="field-error" data-field="artist" hx-swap-oob="true"></p>'
        in html
    )
    assert '<span id="filter-count" hx-swap-oob="true"><span class="badge">1</span></span>' in html
    assert page["HX-Push-Url"] == "/?q=sea&artist=turner"


def test_heading_says_what_the_list_is(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Storm at Sea")
    html = client.get(f"/?q=a+ship&similar={reference}").content.decode()
    heading = re.search(r'<h[12] id="results-heading"[^>]*>(.*?)</h[12]>', html, re.S)
    assert heading
    count = len(card_ids(html))  # the whole fused list fits on the page
    assert count > 1
    assert " ".join(heading.group(1).split()) == (
        f"The {count} best matches for “a ship”, like “Storm at Sea”"
    )
    assert "not a count of exact matches" in html
    assert "<title>“a ship”, like “Storm at Sea” · Artwork search</title>" in html


def test_a_page_past_the_end_says_so(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Storm at Sea")
    html = client.get(f"/?similar={reference}&offset=99999999").content.decode()
    assert "Past the end of the results" in html
    assert "This page starts at result 10001, but there are only 9." in html
    assert "Nothing matched" not in html and "(from" not in html
    assert f'href="/?similar={reference}">Back to the first results' in html


def test_load_more_leaves_a_url_that_shows_everything_loaded(
    client: Any, corpus: Corpus, settings: Any
) -> None:
    settings.GALLERY_PAGE_SIZE = 4
    reference = corpus.id_of("Storm at Sea")
    expected = corpus.exact_ranking(corpus.vectors[0], exclude=reference)
    page = client.get(
        f"/?similar={reference}&offset=4&start=0",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="result-list",
    )
    assert page["HX-Replace-Url"] == f"/?similar={reference}&shown=8"
    assert "HX-Push-Url" not in page
    html = client.get(page["HX-Replace-Url"]).content.decode()
    assert card_ids(html) == expected[:8]
    assert f'hx-get="/?similar={reference}&amp;offset=8&amp;start=0"' in html


def test_artwork_page_leads_back_to_its_search_and_through_its_results(
    client: Any, corpus: Corpus, settings: Any
) -> None:
    settings.GALLERY_PAGE_SIZE = 4
    reference = corpus.id_of("Storm at Sea")
    ranking = corpus.exact_ranking(corpus.vectors[0], exclude=reference)
    html = client.get(f"/?similar={reference}&classification=").content.decode()
    link = f"/artworks/{ranking[1]}/?similar={reference}&amp;rank=2"
    assert f'class="card-link" href="{link}"' in html

    html = client.get(link.replace("&amp;", "&")).content.decode()
    assert f'href="/?similar={reference}#result-{ranking[1]}">← Back to the results' in html
    assert f'rel="prev" href="/artworks/{ranking[0]}/?similar={reference}&amp;rank=1"' in html
    assert f'rel="next" href="/artworks/{ranking[2]}/?similar={reference}&amp;rank=3"' in html
    # Further down the list, the way back shows every page up to it.
    html = client.get(f"/artworks/{ranking[5]}/?similar={reference}&rank=6").content.decode()
    assert f'href="/?similar={reference}&amp;shown=8#result-{ranking[5]}"' in html
    # Without a search (or with a stale rank) it is the plain page.
    html = client.get(f"/artworks/{ranking[5]}/?similar={reference}&rank=2").content.decode()
    assert 'rel="prev"' not in html and "Back to the results" in html
    assert "Back to the results" not in client.get(f"/artworks/{ranking[5]}/").content.decode()


# --- uploads ------------------------------------------------------------------------------------


def test_upload_without_javascript_redirects_to_the_search_url(client: Any) -> None:
    image = _file(jpeg_bytes(), "red.jpg")
    page = client.post("/uploads/?q=red+sky&classification=Painting", {"image": image})
    assert page.status_code == 303
    location = page["Location"]
    match = re.fullmatch(r"/\?q=red\+sky&upload=([A-Za-z0-9_-]+)&classification=Painting", location)
    assert match, location
    preview = client.get(f"/uploads/{match.group(1)}/preview")
    assert preview.status_code == 200 and preview["Content-Type"] == "image/webp"


def test_bad_upload_without_javascript_keeps_the_results(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Storm at Sea")
    page = client.post(f"/uploads/?similar={reference}", {"image": _file(b"nope", "x.jpg")})
    assert page.status_code == 422
    html = page.content.decode()
    assert re.search(r'id="upload-error"[^>]*>The file is not an image', html)
    assert card_ids(html) == corpus.exact_ranking(corpus.vectors[0], exclude=reference)


def test_bad_upload_with_htmx_retargets_the_message(client: Any, corpus: Corpus) -> None:
    page = client.post("/uploads/", {"image": _file(b"nope", "x.jpg")}, **HTMX)
    assert page.status_code == 200
    assert page["HX-Retarget"] == "#upload-error"
    assert page["HX-Reswap"] == "outerHTML"
    html = page.content.decode()
    assert html.startswith('<p id="upload-error"') and "not an image" in html
    assert "data-artwork-id" not in html  # the results on the page are left alone


def test_missing_file_is_a_message(client: Any) -> None:
    page = client.post("/uploads/", {})
    assert page.status_code == 422
    assert "Choose an image file" in page.content.decode()


def test_upload_requires_csrf() -> None:
    from django.test import Client

    page = Client(enforce_csrf_checks=True).post(
        "/uploads/", {"image": _file(jpeg_bytes(), "a.jpg")}
    )
    assert page.status_code == 403


@needs_all_paintings
def test_upload_with_htmx_searches_by_the_image(
    client: Any, test_encoder_settings: Path, aic_records: list[dict[str, Any]]
) -> None:
    records = {record["id"]: record for record in aic_records}
    ids = import_and_embed_aic(aic_records, [866, 14598, 16151])
    data = (ALL_PAINTINGS / records[14598]["image"]).read_bytes()
    page = client.post("/uploads/?q=", {"image": _file(data, "beach.jpg")}, **HTMX)
    html = page.content.decode()
    assert re.fullmatch(r"/\?upload=[A-Za-z0-9_-]+", page["HX-Push-Url"])
    assert card_ids(html)[0] == ids[1]  # the same picture comes first
    assert "chip-upload" in html
    assert "offline test encoder: results are not semantic" not in html  # partial: no header
    full = client.get(page["HX-Push-Url"]).content.decode()
    assert "offline test encoder: results are not semantic" in full
    assert card_ids(full) == card_ids(html)


def test_expired_upload_is_a_notice(client: Any, corpus: Corpus) -> None:
    html = client.get("/?upload=" + "A" * 24).content.decode()
    assert "The uploaded image has expired" in html
    assert "chip-upload" not in html


# --- the artwork page ---------------------------------------------------------------------------


def test_artwork_page_sanitises_the_description_and_credits_it(client: Any) -> None:
    description = (
        '<p onclick="steal()">Painted <em>en plein air</em>.<script>alert(1)</script></p>'
        '<p><a href="javascript:alert(1)">bad</a> <a href="https://example.org/x">good</a>'
        '<img src="x" onerror="alert(1)"><span style="color:red">plain</span></p>'
    )
    artwork = artwork_upsert(
        source="aic",
        external_id="7",
        metadata={"title": "Sea", "description": description, "source_url": "https://x.org/7"},
        image_data=jpeg_bytes(),
    ).artwork
    html = client.get(f"/artworks/{artwork.pk}/").content.decode()
    section = html[html.index('<section class="description"') :]
    section = section[: section.index("</section>")]
    for bad in ("<script", "onclick", "javascript:", "<img", "onerror", "style=", "<span"):
        assert bad not in section
    assert "<p>Painted <em>en plein air</em>.</p>" in section
    assert '<a href="https://example.org/x" rel="noopener noreferrer nofollow">good</a>' in section
    assert "Description: Art Institute of Chicago, CC BY 4.0" in section
    assert 'href="https://x.org/7"' in html


def test_artwork_page_links_only_web_urls(client: Any) -> None:
    # Importers store source_url as given (no URLField validation on that path).
    artwork = artwork_upsert(
        source="local",
        external_id="js",
        metadata={"title": "Trap", "source_url": "javascript:alert(1)"},
        image_data=jpeg_bytes(),
    ).artwork
    html = client.get(f"/artworks/{artwork.pk}/").content.decode()
    assert "javascript:" not in html and "source-link" not in html


def test_artwork_page_strip_lists_neighbours(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Harbor at Night")
    html = client.get(f"/artworks/{reference}/").content.decode()
    strip = html[html.index('<ol class="strip">') :]
    links = re.findall(
        r'class="card-link" href="/artworks/(\d+)/\?similar=(\d+)&amp;rank=(\d+)"', strip
    )
    strip_ids = [int(i) for i, _, _ in links]
    # Each leads on through the similar list: its search and its rank in it.
    assert [(int(s), int(r)) for _, s, r in links] == [
        (reference, rank) for rank in range(1, len(links) + 1)
    ]
    expected = corpus.exact_ranking(corpus.vectors[1], exclude=reference)
    assert strip_ids == expected
    assert f'href="/?similar={reference}"' in html


def test_unknown_artwork_is_404(client: Any) -> None:
    assert client.get("/artworks/424242/").status_code == 404


# --- markup a strict CSP accepts ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/?similar={ref}", "/artworks/{ref}/"])
def test_pages_have_no_inline_script_or_style(client: Any, corpus: Corpus, path: str) -> None:
    page = client.get(path.format(ref=corpus.ids[0]))
    html = page.content.decode()
    assert "script-src 'self'" in page["Content-Security-Policy"]
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/static/' in tag
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    assert "hx-on" not in html
    assert "/static/django_htmx/htmx-2.min.js" in html


def test_offline_notice_only_for_the_test_model(client: Any, corpus: Corpus) -> None:
    assert "offline test encoder" not in client.get("/").content.decode()


def test_media_is_not_served_in_production(client: Any, settings: Any) -> None:
    artwork = artwork_upsert(
        source="local", external_id="m", metadata={}, image_data=jpeg_bytes()
    ).artwork
    settings.DEBUG = False
    settings.GALLERY_SERVE_MEDIA = False
    assert client.get(artwork.thumbnail.url).status_code == 404
    settings.GALLERY_SERVE_MEDIA = True
    assert client.get(artwork.thumbnail.url).status_code == 200


# --- helpers ------------------------------------------------------------------------------------


def _file(data: bytes, name: str) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def _records() -> list[tuple[Any, ...]]:
    from tests.fixtures.corpus import RECORDS

    return RECORDS


def test_the_timing_counts_the_lists_fused(client: Any, encoded_corpus: Any) -> None:
    """The default retriever configures three searches (its stage's num_features); the page
    says how many lists were fused: the searches that ran."""
    corpus, _, _ = encoded_corpus
    reference = corpus.ids[0]
    alone = client.get(f"/?similar={reference}").content.decode()
    assert "document: " in alone and "rrf of" not in alone
    both = client.get(f"/?q=a+storm+at+sea&similar={reference}").content.decode()
    assert "rrf of 2" in both and "rrf of 3" not in both
