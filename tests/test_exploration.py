"""Exploring a search: facets with counts over the whole fused list (page and API, checked
against counts made here from the corpus's records), facet links that filter and come back the
same from their URL, "why this result" in plain words, and "more by this artist"."""

from __future__ import annotations

import html as html_lib
import math
import re
from collections import Counter
from typing import Any

import pytest

from gallery.models import Artwork
from gallery.query import SearchQuery
from gallery.selectors import search_page
from search.facets import century_label, facet_counts, ordinal
from tests.fixtures.corpus import RECORDS, Corpus

pytestmark = pytest.mark.django_db

K = 60  # the default retriever's RRF k
# A result card's artwork (chips and the reference tray name artworks too).
CARD_ID = r'<li class="card"[^>]*data-artwork-id="(\d+)"'


def expected_facets(ids: list[int], corpus: Corpus) -> dict[str, Counter[str]]:
    """The facets of `ids`, counted in Python from the records the corpus was made of."""
    counts: dict[str, Counter[str]] = {
        name: Counter() for name in ("classification", "century", "artist", "source")
    }
    for artwork_id in ids:
        record = RECORDS[corpus.ids.index(artwork_id)]
        _, artist, classification, begin, end, *_, source = record
        counts["classification"][classification] += 1
        counts["artist"][artist] += 1
        counts["source"][source] += 1
        if begin is not None and end is not None:
            for century in range(math.floor(begin / 100), math.floor(end / 100) + 1):
                counts["century"][str(century * 100)] += 1
    return counts


def as_counter(values: list[Any]) -> Counter[str]:
    return Counter({value.value: value.count for value in values})


# --- facets -------------------------------------------------------------------------------------


def test_facets_count_the_whole_fused_list_not_the_page(corpus: Corpus, settings: Any) -> None:
    # Pages of 3 and retriever requests of at most 4 results: the nine neighbours of a find
    # similar search take three pages, and the facets must still count all nine.
    settings.GALLERY_PAGE_SIZE = 3
    settings.SEARCH_MAX_PAGE_SIZE = 4
    reference = corpus.id_of("Harbor at Night")
    outcome = search_page(query=SearchQuery(similar=reference))
    assert len(outcome.cards) == 3 and outcome.total == 9
    facets = outcome.facets
    assert facets is not None and facets.counted == 9
    others = [artwork_id for artwork_id in corpus.ids if artwork_id != reference]
    expected = expected_facets(others, corpus)
    assert as_counter(facets.classification) == expected["classification"]
    assert as_counter(facets.century) == expected["century"]
    assert as_counter(facets.artist) == expected["artist"]
    assert as_counter(facets.source) == expected["source"]
    assert as_counter(facets.collection) == Counter({"default": 9})
    # The most frequent first; centuries in time order, named as people say them.
    assert [value.count for value in facets.artist] == sorted(
        (value.count for value in facets.artist), reverse=True
    )
    assert [value.value for value in facets.century] == sorted(
        (value.value for value in facets.century), key=int
    )
    nineteenth = next(value for value in facets.century if value.value == "1800")
    assert nineteenth.label == "19th century"
    assert nineteenth.filters == {"year_from": 1800, "year_to": 1899}
    assert next(v for v in facets.source if v.value == "aic").label == "Art Institute of Chicago"


def test_api_returns_the_facets_of_the_whole_list(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Storm at Sea")
    response = client.post(
        "/api/retrievers/default/execute",
        {"inputs": {"document_id": reference}, "limit": 2},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["results"]) == 2 and body["total"] == 9
    facets = body["facets"]
    assert facets["counted"] == 9
    others = [artwork_id for artwork_id in corpus.ids if artwork_id != reference]
    expected = expected_facets(others, corpus)
    for name in ("classification", "century", "artist", "source"):
        got = Counter({value["value"]: value["count"] for value in facets[name]})
        assert got == expected[name], name
    monet = next(value for value in facets["artist"] if value["value"] == "Claude Monet")
    assert monet == {
        "value": "Claude Monet", "label": "Claude Monet", "count": 2,
        "filters": {"artist": "Claude Monet"},
    }  # fmt: skip
    # Its filters, added to the request, give the list of that artist's works.
    narrowed = client.post(
        "/api/retrievers/default/execute",
        {"inputs": {"document_id": reference}, "filters": monet["filters"]},
        content_type="application/json",
    ).json()
    assert {item["artwork_id"] for item in narrowed["results"]} == {
        corpus.id_of("Harbor at Night"),
        corpus.id_of("Study of Trees"),
    }
    assert narrowed["facets"]["artist"] == [{**monet}]


def test_facets_keep_ten_values_and_count_each_century_a_work_spans(corpus: Corpus) -> None:
    extra = [
        Artwork.objects.create(
            source="local", external_id=f"artist-{n}", title=f"Work {n}", artist=f"Painter {n}"
        ).pk
        for n in range(12)
    ]
    ancient = Artwork.objects.create(
        source="local", external_id="ancient", begin_year=-50, end_year=30, artist="Maker (Roman)"
    )
    facets = facet_counts(artwork_ids=[*corpus.ids, *extra, ancient.pk])
    assert len(facets.artist) == 10  # the top ten of 19 names
    top = facets.artist[0]
    assert (top.count, top.value) == (2, "Claude Monet")  # ties (Turner's 2) by name
    centuries = {value.value: (value.label, value.count) for value in facets.century}
    assert centuries["-100"] == ("1st century BCE", 1)
    assert centuries["0"] == ("1st century", 1)
    # "Study of Trees" (1880–1881) once, "Sea Study" (1830–1835) once: no double counting.
    assert centuries["1800"][1] == len(
        [r for r in RECORDS if r[3] is not None and 1800 <= r[3] <= 1899]
    )
    assert "Maker" in {value.value for value in facet_counts(artwork_ids=[ancient.pk]).artist}
    assert facet_counts(artwork_ids=[]).counted == 0


def test_facet_words() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th",
    ]  # fmt: skip
    assert century_label(18) == "19th century"
    assert century_label(-2) == "2nd century BCE"


def facet_links(html: str) -> dict[str, tuple[str, str, bool]]:
    """label -> (count, URL, chosen) of the page's facet links."""
    links = {}
    for attributes, label, count in re.findall(
        r'<a class="facet-value[^"]*" ([^>]*)><span class="facet-label">([^<]*)</span> '
        r'<span class="facet-count">(\d+)</span>',
        html,
    ):
        href = re.search(r'href="([^"]*)"', attributes)
        assert href, attributes
        url = html_lib.unescape(href[1])
        links[html_lib.unescape(label)] = (count, url, 'aria-current="true"' in attributes)
    return links


def test_a_facet_link_adds_its_filter_and_its_url_gives_the_same_page(
    client: Any, corpus: Corpus
) -> None:
    reference = corpus.id_of("Storm at Sea")
    page = client.get(f"/?similar={reference}").content.decode()
    links = facet_links(page)
    count, url, chosen = links["Claude Monet"]
    assert (count, chosen) == ("2", False)
    assert url == f"/?similar={reference}&artist=Claude+Monet"
    assert links["19th century"][1] == f"/?similar={reference}&year_from=1800&year_to=1899"

    # With HTMX (a click), the search area comes back and the URL goes into the history.
    swapped = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="search")
    assert swapped["HX-Push-Url"] == url
    filtered = client.get(url).content.decode()
    assert 'value="Claude Monet"' in filtered  # the artist field holds the filter
    ids = [int(i) for i in re.findall(CARD_ID, filtered)]
    assert ids == [corpus.id_of("Harbor at Night"), corpus.id_of("Study of Trees")]
    # The same search from its URL shows the same cards, and the facet as chosen, whose link
    # now removes it.
    assert re.findall(CARD_ID, swapped.content.decode()) == [str(i) for i in ids]
    count, url, chosen = facet_links(filtered)["Claude Monet"]
    assert chosen and url == f"/?similar={reference}"
    assert '<details class="facets" open>' in filtered


def test_browsing_and_load_more_count_no_facets(client: Any, corpus: Corpus) -> None:
    assert "facet-value" not in client.get("/").content.decode()
    reference = corpus.ids[0]
    more = client.get(
        f"/?similar={reference}&offset=3",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="result-list",
    ).content.decode()
    assert "facet-value" not in more and "data-artwork-id" in more


# --- why this result ----------------------------------------------------------------------------


def test_each_hit_says_where_the_search_placed_it(client: Any, corpus: Corpus) -> None:
    reference = corpus.id_of("Harbor at Night")
    html = html_lib.unescape(client.get(f"/?similar={reference}").content.decode())
    expected = corpus.exact_ranking(corpus.vectors[1], exclude=reference)
    whys = re.findall(r'<details class="why">.*?</details>', html, flags=re.S)
    assert len(whys) == len(re.findall(CARD_ID, html)) > 3
    for rank, why in enumerate(whys[:4], start=1):
        assert f"{ordinal(rank)} like “Harbor at Night”." in why
        assert f"Score {1 / (K + rank):.4f}" in why
    assert expected[:4] == [int(i) for i in re.findall(CARD_ID, html)[:4]]


def test_why_names_every_search_and_the_ones_that_missed_it(corpus: Corpus) -> None:
    from gallery.selectors.explain import explanation
    from search.retriever import ResultItem, SearchStats

    def stats(name: str, mode: str) -> SearchStats:
        return SearchStats(
            name=name, input_mode=mode, feature="f", top_k=250, encode_ms=0, knn_ms=0,
            returned=250, vector_cached=False,
        )  # fmt: skip

    item = ResultItem(
        artwork_id=1, title="t", artist="", display_date="", thumbnail_url="", width=None,
        height=None, alt_text="", score=1 / 63 + 1 / 72, ranks={"text": 3, "document": 12},
    )  # fmt: skip
    searches = [stats("text", "text"), stats("document", "document"), stats("image", "content")]
    sentences = explanation(item=item, searches=searches, references=["Saint Francis"])
    assert sentences[0] == "3rd by your words, 12th like “Saint Francis”."
    assert sentences[1] == "Not among the 250 closest by your picture."
    assert sentences[2].startswith(f"Fused score {1 / 63 + 1 / 72:.4f}")


# --- more by this artist ------------------------------------------------------------------------


def test_artwork_page_shows_more_by_its_artist(client: Any, corpus: Corpus) -> None:
    harbor = corpus.id_of("Harbor at Night")
    html = client.get(f"/artworks/{harbor}/").content.decode()
    assert "More by Claude Monet" in html
    strip = html[html.index('class="artist-strip"') :]
    assert [int(i) for i in re.findall(r'data-artwork-id="(\d+)"', strip)] == [
        corpus.id_of("Study of Trees")
    ]  # the artwork itself left out
    assert 'href="/?artist=Claude+Monet"' in strip
    # Details after the name do not make another artist.
    Artwork.objects.create(
        source="local", external_id="x", title="Water Lilies", artist="Claude Monet (French)"
    )
    strip = client.get(f"/artworks/{harbor}/").content.decode()
    assert "Water Lilies" in strip[strip.index('class="artist-strip"') :]


@pytest.mark.parametrize("title", ["Madonna and Child", "Portrait of a Lady"])
def test_no_artist_strip_for_an_unknown_artist_or_a_single_work(
    client: Any, corpus: Corpus, title: str
) -> None:
    # "Unknown" names no one; Rembrandt has one work here.
    html = client.get(f"/artworks/{corpus.id_of(title)}/").content.decode()
    assert "artist-strip" not in html and "More by" not in html
