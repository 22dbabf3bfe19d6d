"""The retriever on the hand-built corpus (tests/fixtures/corpus.py): whole ordered results."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from search.errors import (
    FeatureUnavailable,
    NotEmbedded,
    NothingToSearch,
    TextTooLong,
    TopKOutOfRange,
    UnknownArtwork,
    UnknownRetriever,
)
from search.filters import BadFilter, Filters
from search.models import Retriever
from search.retriever import RetrievalInputs, RetrievalResult, execute_retriever
from tests.fixtures.corpus import RECORDS, Corpus, EncodedCorpus
from tests.helpers import rrf_by_hand

pytestmark = pytest.mark.django_db


def titles(result: RetrievalResult) -> list[str]:
    return [item.title for item in result.results]


def by_index(corpus: Corpus, indexes: list[int]) -> list[str]:
    return [RECORDS[i][0] for i in indexes]


def make_retriever(name: str, searches: list[dict], **parameters: object) -> Retriever:
    return Retriever.objects.create(
        name=name,
        config={
            "stage_id": "feature_search",
            "parameters": {"searches": searches, "final_top_k": 500, "fusion": "rrf", **parameters},
        },
    )


DOCUMENT = {
    "feature": "active",
    "query": {"input_mode": "document", "document_ref": "{{INPUT.document_id}}"},
    "top_k": 250,
}
KEYWORDS = {"query": {"input_mode": "keywords", "value": "{{INPUT.keywords}}"}, "top_k": 250}


# Document (find similar) -----------------------------------------------------------------------
def test_document_search_ranks_by_angle_and_leaves_the_artwork_out(corpus: Corpus) -> None:
    # Artwork 3 sits at 24°. Angle gaps: 2:9 4:10 1:17 5:21 0:24 6:33 7:46 8:60 9:76.
    study = corpus.id_of("Study of Trees")
    result = execute_retriever(inputs=RetrievalInputs(document_id=study), use_cache=False)
    expected = [2, 4, 1, 5, 0, 6, 7, 8, 9]
    assert titles(result) == by_index(corpus, expected)
    assert [item.artwork_id for item in result.results] == corpus.exact_ranking(
        corpus.vectors[3], exclude=study
    )
    assert result.total == 9
    assert all(item.ranks == {"document": rank} for rank, item in enumerate(result.results, 1))
    assert [item.score for item in result.results] == pytest.approx(
        [1 / (60 + rank) for rank in range(1, 10)]
    )
    stage = result.stages[0]
    # The default retriever configures seven searches (text, image, document, then references,
    # region and two negative ones); only the document search had an input.
    assert (stage.stage_name, stage.num_features, stage.searches_run, stage.fusion_strategy) == (
        "feature_search",
        7,
        1,
        "rrf",
    )
    assert [(s.name, s.returned) for s in stage.searches] == [("document", 9)]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(classification="painting"), [2, 4, 1, 5, 0, 7, 8, 9]),
        (Filters(year_from=1800, year_to=1900), [4, 1, 0, 6, 7, 8]),
        (Filters(year_to=1700), [2, 5, 9]),
        (Filters(artist="  MONET "), [1]),
        (Filters(source="aic"), [4, 7]),
        (Filters(classification="Painting", source="local", year_from=1700), [1, 0, 8]),
    ],
)
def test_filters_apply_inside_the_search(
    corpus: Corpus, filters: Filters, expected: list[int]
) -> None:
    study = corpus.id_of("Study of Trees")
    result = execute_retriever(
        inputs=RetrievalInputs(document_id=study), filters=filters, use_cache=False
    )
    assert titles(result) == by_index(corpus, expected)


def test_top_k_and_pagination_over_the_fused_list(corpus: Corpus) -> None:
    study = corpus.id_of("Study of Trees")
    inputs = RetrievalInputs(document_id=study)
    top3 = execute_retriever(inputs=inputs, top_k=3, use_cache=False)
    assert titles(top3) == by_index(corpus, [2, 4, 1])
    page = execute_retriever(inputs=inputs, offset=3, limit=4, use_cache=False)
    assert titles(page) == by_index(corpus, [5, 0, 6, 7])
    assert (page.total, page.offset, page.limit) == (9, 3, 4)
    assert page.results[0].ranks == {"document": 4}
    past_end = execute_retriever(inputs=inputs, offset=50, limit=4, use_cache=False)
    assert (past_end.results, past_end.total) == ([], 9)


def test_document_errors(corpus: Corpus) -> None:
    from gallery.models import Artwork

    with pytest.raises(UnknownArtwork):
        execute_retriever(inputs=RetrievalInputs(document_id=999_999))
    bare = Artwork.objects.create(source="local", external_id="bare", title="Not yet")
    with pytest.raises(NotEmbedded) as info:
        execute_retriever(inputs=RetrievalInputs(document_id=bare.pk))
    assert info.value.status_code == 409


def test_no_active_feature(db: None) -> None:
    from gallery.models import Artwork

    bare = Artwork.objects.create(source="local", external_id="bare", title="Not yet")
    with pytest.raises(FeatureUnavailable):
        execute_retriever(inputs=RetrievalInputs(document_id=bare.pk))
    with pytest.raises(UnknownArtwork):
        execute_retriever(inputs=RetrievalInputs(document_id=bare.pk + 1000))


# Keywords --------------------------------------------------------------------------------------
def test_keyword_search_whole_ranking(corpus: Corpus) -> None:
    make_retriever("words", [KEYWORDS])
    # "storm": title (weight A) in 0 and 9, plus the description (D) in 0; description only in 6.
    storm = execute_retriever(name="words", inputs=RetrievalInputs(keywords="Storm"))
    assert titles(storm) == ["Storm at Sea", "Ship in a Storm", "Sea Study"]
    # "sea": title + description in 4 and 6 (a tie: the smaller id first), title only in 0.
    sea = execute_retriever(name="words", inputs=RetrievalInputs(keywords="sea"))
    assert titles(sea) == ["The Sea at Dawn", "Sea Study", "Storm at Sea"]
    # websearch syntax: a phrase, `or`, and an excluded word; stemming (boats -> boat).
    phrase = execute_retriever(name="words", inputs=RetrievalInputs(keywords='"storm at sea"'))
    assert titles(phrase) == ["Storm at Sea"]
    either = execute_retriever(name="words", inputs=RetrievalInputs(keywords="monet or gogh"))
    assert titles(either) == ["Harbor at Night", "Study of Trees", "Flowers in a Vase"]
    without = execute_retriever(name="words", inputs=RetrievalInputs(keywords="storm -ship"))
    assert titles(without) == ["Storm at Sea", "Sea Study"]
    medium = execute_retriever(
        name="words", inputs=RetrievalInputs(keywords="watercolor"), filters=Filters()
    )
    assert titles(medium) == ["Sea Study"]
    filtered = execute_retriever(
        name="words",
        inputs=RetrievalInputs(keywords="storm"),
        filters=Filters(classification="Drawing"),
    )
    assert titles(filtered) == ["Sea Study"]
    none = execute_retriever(name="words", inputs=RetrievalInputs(keywords="zebra"))
    assert (none.results, none.total) == ([], 0)


def test_keyword_index_is_used(corpus: Corpus) -> None:
    from django.db import connection

    from search.keywords import keyword_sql

    sql, params = keyword_sql(filters=None)
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + sql, ["storm", *params, 10])
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "artwork_search_document" in plan


# Fusion of several searches -------------------------------------------------------------------
def test_document_and_keywords_fused(corpus: Corpus) -> None:
    make_retriever("both", [DOCUMENT, KEYWORDS])
    study = corpus.id_of("Study of Trees")
    result = execute_retriever(
        name="both", inputs=RetrievalInputs(document_id=study, keywords="storm")
    )
    document = [corpus.ids[i] for i in [2, 4, 1, 5, 0, 6, 7, 8, 9]]
    keywords = [corpus.ids[i] for i in [0, 9, 6]]
    scores = {
        artwork_id: sum(
            1 / (60 + ranking.index(artwork_id) + 1)
            for ranking in (document, keywords)
            if artwork_id in ranking
        )
        for artwork_id in document
    }
    # by hand: Storm at Sea 1/65 + 1/61, Sea Study 1/66 + 1/63, Ship 1/69 + 1/62, then the rest.
    expected = sorted(document, key=lambda a: (-round(scores[a], 12), a))
    assert [item.artwork_id for item in result.results] == expected
    assert titles(result)[:3] == ["Storm at Sea", "Sea Study", "Ship in a Storm"]
    assert result.results[0].ranks == {"document": 5, "keywords": 1}
    assert result.results[0].score == pytest.approx(1 / 65 + 1 / 61)
    assert (result.stages[0].num_features, result.stages[0].searches_run) == (2, 2)
    # keywords only: the document search is skipped, not an error
    alone = execute_retriever(name="both", inputs=RetrievalInputs(keywords="storm"))
    assert titles(alone) == ["Storm at Sea", "Ship in a Storm", "Sea Study"]


def test_weights_and_k_from_the_configuration(corpus: Corpus) -> None:
    make_retriever(
        "weighted",
        [DOCUMENT, {**KEYWORDS, "weight": 0.0}],
        fusion={"strategy": "rrf", "k": 1},
        final_top_k=4,
    )
    study = corpus.id_of("Study of Trees")
    result = execute_retriever(
        name="weighted", inputs=RetrievalInputs(document_id=study, keywords="storm")
    )
    # keywords weigh nothing: the document order alone, cut at final_top_k, scores 1/(1 + rank)
    assert titles(result) == by_index(corpus, [2, 4, 1, 5])
    assert [item.score for item in result.results] == pytest.approx([1 / 2, 1 / 3, 1 / 4, 1 / 5])
    assert result.total == 4


# Input errors ----------------------------------------------------------------------------------
def test_input_errors(corpus: Corpus) -> None:
    with pytest.raises(NothingToSearch) as info:
        execute_retriever(inputs=RetrievalInputs(text="   \n "))
    assert info.value.status_code == 400
    with pytest.raises(UnknownRetriever):
        execute_retriever(name="nope", inputs=RetrievalInputs(document_id=corpus.ids[0]))
    with pytest.raises(TextTooLong):
        execute_retriever(inputs=RetrievalInputs(text="x" * 1001))
    for bad in (0, 1001):
        with pytest.raises(TopKOutOfRange):
            execute_retriever(inputs=RetrievalInputs(document_id=corpus.ids[0]), top_k=bad)
    with pytest.raises(BadFilter):
        execute_retriever(
            inputs=RetrievalInputs(document_id=corpus.ids[0]),
            filters=Filters(year_from=1900, year_to=1800),
        )


# Text and image, through the offline test encoder ----------------------------------------------
def test_text_image_and_fused_searches(
    encoded_corpus: EncodedCorpus, aic_image_bytes: bytes
) -> None:
    corpus, text_vector, image_vector = encoded_corpus
    text_order = corpus.exact_ranking(text_vector)
    image_order = corpus.exact_ranking(image_vector)
    assert text_order != image_order  # the fused case below is not trivial

    text = execute_retriever(inputs=RetrievalInputs(text="  A storm   at SEA "))
    assert [r.artwork_id for r in text.results] == text_order
    assert text.stages[0].searches[0].input_mode == "text"
    assert text.stages[0].searches[0].vector_cached is False
    again = execute_retriever(inputs=RetrievalInputs(text="a storm at sea"), use_cache=False)
    assert again.stages[0].searches[0].vector_cached is True  # the query vector's own cache

    image = execute_retriever(inputs=RetrievalInputs(image=aic_image_bytes))
    assert [r.artwork_id for r in image.results] == image_order
    assert image.stages[0].searches[0].name == "content"
    assert image.stages[0].searches[0].encode_ms > 0

    both = execute_retriever(inputs=RetrievalInputs(text="a storm at sea", image=aic_image_bytes))
    assert [r.artwork_id for r in both.results] == rrf_by_hand(text_order, image_order)
    assert set(both.results[0].ranks) == {"text", "content"}

    anchor = text_order[0]
    all_three = execute_retriever(
        inputs=RetrievalInputs(text="a storm at sea", image=aic_image_bytes, document_id=anchor)
    )
    document_order = corpus.exact_ranking(corpus.vectors[corpus.ids.index(anchor)], exclude=anchor)
    assert [r.artwork_id for r in all_three.results] == rrf_by_hand(
        text_order, image_order, document_order
    )
    assert (all_three.stages[0].num_features, all_three.stages[0].searches_run) == (7, 3)


def test_bad_image(encoded_corpus: EncodedCorpus) -> None:
    from search.errors import BadImage

    with pytest.raises(BadImage) as info:
        execute_retriever(inputs=RetrievalInputs(image=b"not an image at all"))
    assert info.value.status_code == 422


# Named retrievers ------------------------------------------------------------------------------
def test_default_retrievers_come_from_the_migration(db: None) -> None:
    from search.config import default_config

    default = Retriever.objects.get(name="default")
    assert default.config == default_config()
    params = default.parsed.parameters
    assert [(s.label, s.query.input_mode, s.polarity) for s in params.searches] == [
        ("text", "text", "positive"),
        ("content", "content", "positive"),
        ("document", "document", "positive"),
        ("reference", "document", "positive"),
        ("region", "content", "positive"),
        ("unlike", "document", "negative"),
        ("unlike-image", "content", "negative"),
    ]
    assert [s.source for s in params.searches] == [
        "text",
        "image",
        "document_id",
        "references",
        "region",
        "negatives",
        "negative_image",
    ]
    assert {s.top_k for s in params.searches} == {250}
    assert {s.feature for s in params.searches} == {"active"}
    assert (params.final_top_k, params.fusion.strategy, params.fusion.k) == (500, "rrf", 60)
    hybrid = Retriever.objects.get(name="hybrid")
    assert hybrid.config == default_config(keywords=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["parameters"]["searches"][0].update(top_k=0), "top_k"),
        (lambda c: c["parameters"]["searches"][0].update(top_k=1001), "top_k"),
        (lambda c: c["parameters"]["searches"][1]["query"].update(value="{{INPUT.text}}"),
         "INPUT.image"),
        (lambda c: c["parameters"]["searches"][0]["query"].update(value="{{INPUT.colour}}"),
         "unknown template"),
        (lambda c: c["parameters"]["searches"][2]["query"].update(document_ref="abc"),
         "document_ref"),
        (lambda c: c["parameters"]["searches"][0].pop("feature"), "feature"),
        (lambda c: c["parameters"]["searches"].append(c["parameters"]["searches"][0]), "named"),
        (lambda c: c["parameters"].update(fusion="borda"), "fusion"),
        (lambda c: c["parameters"].update(searches=[]), "searches"),
        (lambda c: c.update(stage_id="rerank"), "stage_id"),
        (lambda c: c["parameters"].update(extra=1), "extra"),
        # The exploration searches: each problem named where it is.
        (lambda c: c["parameters"]["searches"][5].update(polarity="neutral"),
         "parameters.searches.5.polarity"),
        (lambda c: c["parameters"]["searches"][4]["query"].update(value="{{INPUT.references}}"),
         "INPUT.region"),
        (lambda c: c["parameters"]["searches"][3]["query"].update(document_ref="{{INPUT.region}}"),
         "parameters.searches.3.query"),
        (lambda c: c["parameters"]["searches"][0]["query"].update(value="{{INPUT.negatives}}"),
         "cannot take {{INPUT.negatives}}"),
        (lambda c: c["parameters"]["searches"][3].update(name="reference:1"),
         "parameters.searches.3.name"),
        (lambda c: c["parameters"]["searches"][6].update(weight=10.5),
         "parameters.searches.6.weight"),
    ],
)  # fmt: skip
def test_invalid_configurations_are_refused(db: None, change, message: str) -> None:
    import copy

    from django.core.exceptions import ValidationError

    from search.admin_retrievers import RetrieverForm
    from search.config import default_config

    config = copy.deepcopy(default_config())
    change(config)
    with pytest.raises(ValidationError) as info:
        Retriever(name="broken", config=config).save()
    assert message in str(info.value)
    form = RetrieverForm(data={"name": "broken", "description": "", "config": json.dumps(config)})
    assert not form.is_valid()
    assert message in str(form.errors["config"])
    good = RetrieverForm(
        data={"name": "good", "description": "", "config": json.dumps(default_config())}
    )
    assert good.is_valid(), good.errors


def test_admin_pages(admin_client: Client) -> None:
    listing = admin_client.get("/admin/search/retriever/")
    assert listing.status_code == 200
    assert (
        b"text (top 250), content (top 250), document (top 250), reference (top 250), "
        b"region (top 250), unlike (negative, top 250), unlike-image (negative, top 250)"
    ) in listing.content


def test_filters_match_case_insensitively_beyond_ascii(db: None) -> None:
    """SQL compares with lower()/UPPER(), so the filter value is lower-cased, not case-folded:
    casefold() turns "ß" into "ss", which no stored "ß" matches."""
    from gallery.models import Artwork
    from search.keywords import keyword_search

    artwork = Artwork.objects.create(
        source="local",
        external_id="strasse",
        title="Harbour view",
        artist="Anna Weiß",
        classification="Straßenbild",
    )
    for filters in (Filters(classification="STRAßENBILD"), Filters(artist="weiß")):
        found = keyword_search(text="harbour", top_k=5, filters=filters)
        assert [artwork_id for artwork_id, _ in found] == [artwork.pk], filters


def test_the_exploration_migration_keeps_an_edited_retriever(db: None) -> None:
    import importlib

    from django.apps import apps

    from search.config import default_config

    migration = importlib.import_module("search.migrations.0008_default_retrievers_explore")
    old = default_config(keywords=True)["parameters"]["searches"][:4]
    custom = {**old[0], "name": "region", "weight": 2.0}  # an operator's own "region" search
    default = Retriever.objects.get(name="default")
    default.config["parameters"]["searches"] = [*old[:3], custom]
    default.save()
    hybrid = Retriever.objects.get(name="hybrid")
    hybrid.config["parameters"]["searches"] = old
    hybrid.save()

    migration.add_searches(apps, None)
    default.refresh_from_db()
    hybrid.refresh_from_db()
    assert [s.label for s in default.parsed.parameters.searches] == [
        "text", "content", "document", "region", "reference", "unlike", "unlike-image"
    ]  # fmt: skip
    assert default.parsed.parameters.searches[3].weight == 2.0  # the operator's, kept
    assert hybrid.config == default_config(keywords=True)

    migration.remove_searches(apps, None)
    hybrid.refresh_from_db()
    assert hybrid.config["parameters"]["searches"] == old
