"""The search page's exploring through Django's test client: references, "less like this",
weights and regions in the URL; the fused order each gives, checked against the formula worked
out here; the chips, the tray, the weight controls and the explanations; and a link that asks
for something impossible, answered with a message, never a 500."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path
from typing import Any

import pytest

from gallery.query import PageRegion, SearchQuery
from tests.fixtures.corpus import Corpus
from tests.helpers import ALL_PAINTINGS, import_and_embed_aic

pytestmark = pytest.mark.django_db

K = 60
HTMX_RESULTS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "results"}


def card_ids(html: str) -> list[int]:
    return [
        int(value) for value in re.findall(r'<li class="card"[^>]*data-artwork-id="(\d+)"', html)
    ]


def page(client: Any, url: str, **headers: str) -> tuple[int, str]:
    response = client.get(url, **headers)
    return response.status_code, html_lib.unescape(response.content.decode())


def hand_fused(
    corpus: Corpus,
    *,
    positive: dict[int, float],
    negative: dict[int, float] | None = None,
) -> list[int]:
    """The fused order of document searches by the artworks `positive` (id -> weight) less
    those by `negative`, by the formula itself: Σ w/(k + rank) − Σ w⁻/(k + rank⁻), ties by the
    best positive rank, then the id. A reference's list leaves the reference out (it is what
    the visitor already has); a negative example's list starts with the example."""

    def ranks(artwork_id: int, *, itself: bool = False) -> dict[int, int]:
        vector = corpus.vectors[corpus.ids.index(artwork_id)]
        ranking = corpus.exact_ranking(vector, exclude=None if itself else artwork_id)
        return {found: place for place, found in enumerate(ranking, start=1)}

    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for reference, weight in positive.items():
        for found, place in ranks(reference).items():
            scores[found] = scores.get(found, 0.0) + weight / (K + place)
            best[found] = min(best.get(found, place), place)
    # A negative example's own list holds the example first: what is marked goes down most.
    for example, weight in (negative or {}).items():
        for found, place in ranks(example, itself=True).items():
            if found in scores:
                scores[found] -= weight / (K + place)
    return sorted(scores, key=lambda i: (-round(scores[i], 12), best[i], i))


# --- the URL ------------------------------------------------------------------------------------


def test_exploring_state_round_trips_through_its_url() -> None:
    query = SearchQuery.from_params(
        {
            "q": "boats",
            "refs": "17, 23,17",
            "unlike": "5,23,9",
            "region": "0.1,0.2,0.300004,0.4",
            "region_of": "12",
            "w.text": "1.5",
            "w.reference:17": "2",
            "w.content": "1",
        }
    )
    assert query.refs == (17, 23)  # order kept, the repeat dropped
    assert query.unlike == (5, 9)  # a reference cannot also be a negative example
    assert query.region == PageRegion(x=0.1, y=0.2, width=0.3, height=0.4, document_id=12)
    assert query.weights == (("reference:17", 2.0), ("text", 1.5))  # 1, the default, left out
    url = query.url()
    assert url == (
        "/?q=boats&refs=17,23&unlike=5,9&region=0.1,0.2,0.3,0.4&region_of=12"
        "&w.reference:17=2&w.text=1.5"
    )
    params = dict(part.split("=", 1) for part in url[2:].split("&"))
    assert SearchQuery.from_params(params) == query
    # A reference is also what is found similar to: one search of it is enough.
    assert SearchQuery.from_params({"similar": "17", "refs": "17,4"}).refs == (4,)


def test_an_upload_marked_less_like_this_and_its_region() -> None:
    upload = "a" * 22
    query = SearchQuery.from_params({"upload": upload, "unlike_upload": "1"})
    assert query.unlike_upload and not query.has_inputs and query.negatives
    # Without the upload the mark means nothing and leaves the link.
    assert SearchQuery.from_params({"unlike_upload": "1"}) == SearchQuery()
    region = SearchQuery.from_params(
        {"upload": upload, "region": "0,0,0.5,0.5", "region_of": "upload"}
    )
    assert region.has_inputs and region.url().endswith("region=0,0,0.5,0.5&region_of=upload")
    assert region.but(upload="").url() == "/"  # the region of an upload goes with it


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"refs": "12,abc"}, "refs", "references “12,abc” are not all artwork numbers"),
        ({"unlike": "-4"}, "unlike", "are not all artwork numbers"),
        ({"refs": "1,2,3,4,5,6,7,8"}, "refs", "at most 6 references; the link has 8"),
        ({"w.text": "99"}, "weights", "weight of “text” must be a number from 0 to 3"),
        ({"w.text": "nan"}, "weights", "not “nan”"),
        ({"w.text": "-1"}, "weights", "not “-1”"),
        ({"w.no such": "2"}, "weights", "“w.no such” names no search"),
        ({"region": "1,2", "region_of": "4"}, "region", "is not four numbers"),
        ({"region": "0.6,0,0.5,0.5", "region_of": "4"}, "region", "is not inside the picture"),
        ({"region": "0,0,0,0.5", "region_of": "4"}, "region", "is not inside the picture"),
        ({"region": "0,0,0.5,0.5"}, "region", "does not say which picture"),
        ({"region_of": "4"}, "region", "names a picture but no box"),
    ],
)
def test_a_link_that_asks_the_impossible_is_reported(
    params: dict[str, str], field: str, message: str
) -> None:
    query = SearchQuery.from_params(params)
    assert [error.field for error in query.errors] == [field]
    assert message in query.errors[0].message


@pytest.mark.parametrize(
    "link",
    [
        "/?q=sea&refs=12,abc",
        "/?q=sea&refs=1,2,3,4,5,6,7,8",
        "/?q=sea&w.text=99",
        "/?q=sea&w.text=inf",
        "/?q=sea&region=0.5,0.5,0.9,0.9&region_of=1",
        "/?q=sea&region=x&region_of=upload",
    ],
)
def test_bad_links_get_a_message_and_a_way_on_never_a_500(
    client: Any, corpus: Corpus, link: str
) -> None:
    status, html = page(client, link)
    assert status == 422
    error = re.search(r'<div class="message error" role="alert">(.*?)</div>', html, re.S)
    assert error and "This link cannot be searched as it is" in error.group(1)
    assert len(re.findall(r"<li>", error.group(1))) == 1  # what is wrong, in one sentence
    repair = re.search(r'class="repair-link" href="([^"]+)"', error.group(1))
    assert repair and repair.group(1).startswith("/?q=sea")
    # The way on searches without the faulty part.
    status, html = page(client, repair.group(1))
    assert status == 200 and card_ids(html)
    # An HTMX request for the same link gets its message in a 200 (htmx swaps no 4xx).
    status, html = page(client, link, **HTMX_RESULTS)
    assert status == 200 and "This link cannot be searched as it is" in html


def test_unknown_artworks_leave_the_search_with_a_notice(client: Any, corpus: Corpus) -> None:
    a = corpus.id_of("Harbor at Night")
    status, html = page(client, f"/?refs={a},999999&unlike=999998")
    assert status == 200
    assert "There are no artworks 999999 and 999998 in the collection." in html
    assert card_ids(html) == hand_fused(corpus, positive={a: 1.0})


# --- references, "less like this", weights: the fused order -------------------------------------


def test_two_references_fuse_their_searches(client: Any, corpus: Corpus) -> None:
    a, b = corpus.id_of("Harbor at Night"), corpus.id_of("Sea Study")
    status, html = page(client, f"/?refs={a},{b}")
    assert status == 200
    assert card_ids(html) == hand_fused(corpus, positive={a: 1.0, b: 1.0})
    tray = re.search(r'<section class="tray".*?</section>', html, re.S)
    assert tray is not None
    assert re.findall(r'class="tray-item" data-artwork="(\d+)"', tray.group(0)) == [
        str(a),
        str(b),
    ]
    assert "2 of 6" in tray.group(0)
    # Each one's remove keeps the other.
    assert f'href="/?refs={b}"' in tray.group(0) and f'href="/?refs={a}"' in tray.group(0)
    assert "like “Harbor at Night” and “Sea Study”" in html  # the heading
    # Reloading the URL gives the same cards in the same order.
    assert card_ids(page(client, f"/?refs={a},{b}")[1]) == card_ids(html)


def test_less_like_this_demotes_by_the_formula(client: Any, corpus: Corpus) -> None:
    a, b = corpus.id_of("Storm at Sea"), corpus.id_of("Winter Landscape")
    before = card_ids(page(client, f"/?similar={a}")[1])
    status, html = page(client, f"/?similar={a}&unlike={b}")
    assert status == 200
    after = card_ids(html)
    assert after == hand_fused(corpus, positive={a: 1.0}, negative={b: 1.0})
    assert after != before and set(after) <= set(before)
    assert after.index(b) > before.index(b)  # the marked artwork itself goes down
    marked = re.search(rf'<li class="card" id="result-{b}".*?</li>', html, re.S)
    assert marked is not None and "Marked less like this<" in marked.group(0)
    assert f'class="card-action less-like marked" href="/?similar={a}"' in marked.group(0)
    chip = re.search(r'<li class="chip chip-unlike chip-negative"[^>]*>.*?</li>', html, re.S)
    assert chip is not None
    assert "Less like “" in chip.group(0) and ">Winter Landscape</a>”" in chip.group(0)
    assert f'href="/?similar={a}"' in chip.group(0)  # its removal
    assert "for “" not in html and "less like “Winter Landscape”" in html


def test_a_weight_changes_the_order_as_the_formula_says(client: Any, corpus: Corpus) -> None:
    a, b = corpus.id_of("Storm at Sea"), corpus.id_of("Winter Landscape")
    even = card_ids(page(client, f"/?refs={a},{b}")[1])
    status, html = page(client, f"/?refs={a},{b}&w.reference:{b}=3")
    assert status == 200
    weighted = card_ids(html)
    assert weighted == hand_fused(corpus, positive={a: 1.0, b: 3.0})
    assert weighted != even
    # The controls say the weights the server fused with.
    controls = dict(re.findall(r'name="w\.([^"]+)"[^>]*value="([^"]+)"', html))
    assert controls == {f"reference:{a}": "1", f"reference:{b}": "3"}
    labels = re.findall(r'<label for="weight-reference-\d+">([^<]+)', html)
    assert labels == ["Like “Storm at Sea”", "Like “Winter Landscape”"]
    # Moving it from the page (HTMX, from the control) replaces the history entry.
    response = client.get(
        f"/?refs={a},{b}&w.reference:{b}=3",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="results",
        HTTP_HX_TRIGGER=f"weight-reference-{b}",
    )
    assert response["HX-Replace-Url"] == f"/?refs={a},{b}&w.reference:{b}=3"
    assert "HX-Push-Url" not in response
    assert card_ids(response.content.decode()) == weighted


def test_a_negative_weight_pushes_further(client: Any, corpus: Corpus) -> None:
    a, b = corpus.id_of("Storm at Sea"), corpus.id_of("Sea Study")
    status, html = page(client, f"/?similar={a}&unlike={b}&w.unlike:{b}=2.5")
    assert card_ids(html) == hand_fused(corpus, positive={a: 1.0}, negative={b: 2.5})
    assert re.search(rf'<label for="weight-unlike-{b}">Less like “Sea Study”', html)
    assert "how much to push away" in html


def test_weights_of_inputs_no_longer_there_leave_the_url(client: Any, corpus: Corpus) -> None:
    a = corpus.id_of("Storm at Sea")
    response = client.get(f"/?similar={a}&w.text=2&w.document=1", **HTMX_RESULTS)
    assert response["HX-Push-Url"] == f"/?similar={a}"


def test_cards_offer_both_sides_and_a_full_tray_says_why_not(client: Any, corpus: Corpus) -> None:
    a = corpus.id_of("Storm at Sea")
    status, html = page(client, f"/?similar={a}")
    first = card_ids(html)[0]
    card = re.search(rf'<li class="card" id="result-{first}".*?</li>', html, re.S)
    assert card is not None
    assert f'href="/?similar={a}&refs={first}"' in card.group(0)
    assert "Add to references<" in card.group(0)
    assert f'href="/?similar={a}&unlike={first}"' in card.group(0)
    assert "Less like this<" in card.group(0)

    six = [i for i in corpus.ids if i != a][:6]
    refs = ",".join(map(str, six))
    status, html = page(client, f"/?similar={a}&refs={refs}")
    assert status == 200
    assert 'id="tray-full"' in html and "The tray holds 6 references at most" in html
    assert "matches like “Storm at Sea”, like your 6 references" in html
    outside = [i for i in card_ids(html) if i not in six]
    card = re.search(rf'<li class="card" id="result-{outside[0]}".*?</li>', html, re.S)
    assert card is not None
    assert 'aria-disabled="true" aria-describedby="tray-full"' in card.group(0)
    inside = re.search(rf'<li class="card" id="result-{six[0]}".*?</li>', html, re.S)
    assert inside is not None and "In references<" in inside.group(0)


def test_only_negative_examples_browse_and_say_why(client: Any, corpus: Corpus) -> None:
    b = corpus.id_of("Sea Study")
    status, html = page(client, f"/?unlike={b}")
    assert status == 200
    assert "“Less like this” only pushes results down" in html
    assert len(card_ids(html)) == len(corpus.ids)
    assert "chip-unlike" in html


def test_explanations_name_references_and_negatives(client: Any, corpus: Corpus) -> None:
    a, b = corpus.id_of("Storm at Sea"), corpus.id_of("Ship in a Storm")
    status, html = page(client, f"/?refs={a}&unlike={b}&w.reference:{a}=2")
    ids = card_ids(html)
    whys = re.findall(r'<details class="why">.*?</details>', html, re.S)
    first = whys[0]
    ranking_a = corpus.exact_ranking(corpus.vectors[corpus.ids.index(a)], exclude=a)
    ranking_b = corpus.exact_ranking(corpus.vectors[corpus.ids.index(b)])
    rank_a, rank_b = ranking_a.index(ids[0]) + 1, ranking_b.index(ids[0]) + 1
    ordinal = {1: "1st", 2: "2nd", 3: "3rd"}
    said = f"{ordinal.get(rank_a, f'{rank_a}th')} like “Storm at Sea” (weight 2)"
    assert said in first
    assert f"unlike “Ship in a Storm” (−{1 / (K + rank_b):.4f})" in first
    assert "w⁻ = 1 unless its weight is changed" in first
    score = 2 / (K + rank_a) - 1 / (K + rank_b)
    assert f"Fused score {score:.4f}" in first


def test_region_chip_shows_the_crop_and_is_removable(client: Any, corpus: Corpus) -> None:
    from gallery.models import Artwork

    a, b = corpus.id_of("Storm at Sea"), corpus.id_of("Sea Study")
    Artwork.objects.filter(pk=b).update(image="artworks/sea.jpg")  # what the crop is drawn from
    link = f"/?similar={a}&region=0.25,0.5,0.5,0.25&region_of={b}"
    status, html = page(client, link)
    assert status != 500
    chip = re.search(r'<li class="chip chip-region"[^>]*>.*?</li>', html, re.S)
    assert chip is not None
    assert ">Sea Study</a>”" in chip.group(0)
    # 400 x 300 pixels: the box's quarter-from-the-left, half-down corner, half by a quarter.
    assert 'viewBox="100.00 150.00 200.00 75.00"' in chip.group(0)
    assert 'width="400" height="300"' in chip.group(0)
    assert f'href="/?similar={a}"' in chip.group(0)  # its removal


# --- the upload: a picture to search by, a "less like this" example, a region -------------------


def test_the_upload_as_a_negative_example_and_its_region(
    client: Any, test_encoder_settings: Path, aic_records: list[dict[str, Any]]
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    records = {record["id"]: record for record in aic_records}
    ids = import_and_embed_aic(aic_records, [866, 14598, 16151])
    data = (ALL_PAINTINGS / records[14598]["image"]).read_bytes()
    posted = client.post("/uploads/", {"image": SimpleUploadedFile("b.jpg", data)})
    upload = re.search(r"upload=([A-Za-z0-9_-]+)", posted["Location"])
    assert upload is not None
    link = f"/?similar={ids[0]}&upload={upload.group(1)}"

    status, html = page(client, link)
    assert card_ids(html)[0] == ids[1]  # the same picture first
    less = re.search(r'class="chip-action chip-less" href="([^"]+)"', html)
    assert less is not None and less.group(1) == f"{link}&unlike_upload=1"

    status, html = page(client, less.group(1))
    assert status == 200
    assert "chip-unlike-upload chip-negative" in html and "chip chip-upload" not in html
    assert card_ids(html)[-1] == ids[1]  # the picture's own artwork now last
    assert '<label for="weight-unlike-image">Less like your image' in html
    assert "less like your image" in html  # the heading
    back = re.search(r'class="chip-action" href="([^"]+)"', html)
    assert back is not None and back.group(1) == link

    region = f"/?upload={upload.group(1)}&region=0,0,0.5,0.25&region_of=upload"
    status, html = page(client, region)
    assert status == 200 and card_ids(html)
    chip = re.search(r'<li class="chip chip-region"[^>]*>.*?</li>', html, re.S)
    assert chip is not None and "A region of your image" in chip.group(0)
    box = re.search(r'viewBox="([\d. ]+)".*?<image href="([^"]+)" width="(\d+)" height="(\d+)"',
                    chip.group(0), re.S)  # fmt: skip
    assert box is not None
    width, height = int(box.group(3)), int(box.group(4))
    assert box.group(1) == f"0.00 0.00 {width / 2:.2f} {height / 4:.2f}"
    assert box.group(2) == f"/uploads/{upload.group(1)}/preview"
    # The region stands for the picture: no chip for the whole upload beside it.
    assert "chip chip-upload" not in html


# --- the artwork page ---------------------------------------------------------------------------


def test_the_artwork_page_adds_to_the_tray_and_keeps_it(client: Any, corpus: Corpus) -> None:
    a, b, c = (corpus.id_of(t) for t in ("Harbor at Night", "Sea Study", "Flowers in a Vase"))
    status, html = page(client, f"/artworks/{c}/?refs={a},{b}&rank=3")
    assert status == 200
    # "+ Add to references" leads back to the search with this artwork last in the tray.
    assert f'href="/?refs={a},{b},{c}">+ Add to references' in html
    # "Find similar" searches like this artwork and keeps the tray.
    assert f'href="/?similar={c}&refs={a},{b}">Find similar' in html
    # Already in the tray: nothing to add, and find similar leaves it out of the tray.
    html = page(client, f"/artworks/{a}/?refs={a},{b}&rank=1")[1]
    assert "+ Add to references" not in html
    assert f'href="/?similar={a}&refs={b}">Find similar' in html
    # Not reached from a search: no tray to add to.
    assert "+ Add to references" not in page(client, f"/artworks/{c}/")[1]


def test_a_full_tray_offers_no_add_on_the_artwork_page(client: Any, corpus: Corpus) -> None:
    ids = corpus.ids[:7]
    refs = ",".join(str(i) for i in ids[:6])
    html = page(client, f"/artworks/{ids[6]}/?refs={refs}&rank=2")[1]
    assert "+ Add to references" not in html
