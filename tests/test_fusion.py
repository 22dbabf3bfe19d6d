"""RRF against hand-computed lists; no database."""

from __future__ import annotations

import pytest

from search.fusion import rrf


def as_tuples(fused: list) -> list[tuple]:
    return [(f.item, round(f.score, 10), f.ranks) for f in fused]


def test_single_list_keeps_its_order_and_scores() -> None:
    fused = rrf({"text": [30, 10, 20]})
    assert as_tuples(fused) == [
        (30, round(1 / 61, 10), {"text": 1}),
        (10, round(1 / 62, 10), {"text": 2}),
        (20, round(1 / 63, 10), {"text": 3}),
    ]


def test_two_lists_hand_computed_with_missing_items() -> None:
    # a: 1 2 3 4      b: 3 1 5
    # 1: 1/61 + 1/62 = 0.032522   3: 1/63 + 1/61 = 0.032266   2: 1/62 = 0.016129
    # 5: 1/63 = 0.015873          4: 1/64 = 0.015625
    fused = rrf({"a": [1, 2, 3, 4], "b": [3, 1, 5]})
    assert [f.item for f in fused] == [1, 3, 2, 5, 4]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[0].ranks == {"a": 1, "b": 2}
    assert fused[2].ranks == {"a": 2}  # missing from b: no entry, no contribution
    assert fused[3].ranks == {"b": 3}


def test_k_changes_the_order() -> None:
    # x is first in one list only; y is second in both lists.
    lists = {"a": ["x", "y"], "b": ["z", "y"]}
    # k=60: y = 2/62 = 0.0323 > x = 1/61 = 0.0164
    assert [f.item for f in rrf(lists)][0] == "y"
    # k=0: x = z = 1/1 and y = 1/2 + 1/2: all equal; best single rank puts x, z (1) before y (2)
    assert [f.item for f in rrf(lists, k=0)] == ["x", "z", "y"]


def test_weights() -> None:
    lists = {"text": [1, 2], "image": [2, 1]}
    # equal weights: 1 and 2 tie exactly (1/61 + 1/62 each); best rank ties (1); id decides.
    assert [f.item for f in rrf(lists)] == [1, 2]
    # image weighted 2: item 2 = 1/62 + 2/61 = 0.04892 > item 1 = 1/61 + 2/62 = 0.04865
    fused = rrf(lists, weights={"image": 2.0})
    assert [f.item for f in fused] == [2, 1]
    assert fused[0].score == pytest.approx(1 / 62 + 2 / 61)
    # a zero weight removes a list's influence but keeps its ranks for explanation
    fused = rrf({"text": [1, 2], "image": [3, 2]}, weights={"image": 0.0})
    assert [(f.item, f.ranks) for f in fused] == [
        (1, {"text": 1}),
        (2, {"text": 2, "image": 2}),
        (3, {"image": 1}),
    ]


def test_ties_break_on_best_single_rank_then_id() -> None:
    # 10 and 20 each appear once at rank 2; 5 appears at rank 1 in c only -> highest.
    # 7 is rank 3 in a and rank 3 in b: 2/63 = 0.03175 beats single rank 1 (1/61 = 0.01639).
    lists = {"a": [99, 20, 7], "b": [98, 10, 7], "c": [5]}
    fused = rrf(lists)
    assert [f.item for f in fused] == [7, 5, 98, 99, 10, 20]
    # 5, 98, 99 all score 1/61 and have best rank 1: ids decide (5 < 98 < 99)
    # 10 and 20 both score 1/62 with best rank 2: ids decide


def test_tie_with_three_lists_is_independent_of_summation_order() -> None:
    # Same multiset of ranks in different lists: exactly equal in real numbers.
    lists = {"a": [1, 2, 3], "b": [2, 3, 1], "c": [3, 1, 2]}
    fused = rrf(lists)
    assert [f.item for f in fused] == [1, 2, 3]
    assert len({round(f.score, 12) for f in fused}) == 1


def test_duplicate_in_one_list_counts_once_at_best_rank() -> None:
    fused = rrf({"a": [1, 2, 1]})
    assert [(f.item, f.ranks) for f in fused] == [(1, {"a": 1}), (2, {"a": 2})]
    assert fused[0].score == pytest.approx(1 / 61)


def test_empty_and_invalid() -> None:
    assert rrf({}) == []
    assert rrf({"a": []}) == []
    with pytest.raises(ValueError):
        rrf({"a": [1]}, weights={"b": 1.0})
    with pytest.raises(ValueError):
        rrf({"a": [1]}, k=-1)


# Negative lists ("less like this") -------------------------------------------------------------
def test_a_negative_list_subtracts_and_adds_no_items() -> None:
    # text: 1 2 3      unlike: 3 9 1
    # 1: 1/61 - 1/63 = 0.000520   2: 1/62 = 0.016129   3: 1/63 - 1/61 = -0.000520
    # 9 is only in the negative list: not output.
    fused = rrf({"text": [1, 2, 3]}, negatives={"unlike": [3, 9, 1]})
    assert [f.item for f in fused] == [2, 1, 3]
    assert fused[1].score == pytest.approx(1 / 61 - 1 / 63)
    assert fused[2].score == pytest.approx(1 / 63 - 1 / 61)
    assert fused[2].score < 0
    # Each item's ranks include the negative list's.
    assert {f.item: f.ranks for f in fused} == {
        1: {"text": 1, "unlike": 3},
        2: {"text": 2},
        3: {"text": 3, "unlike": 1},
    }


def test_a_negative_rank_takes_away_what_the_same_positive_rank_gives() -> None:
    fused = rrf({"a": [1, 2], "b": [2]}, negatives={"not": [2]})
    # 2: 1/62 + 1/61 - 1/61 = 1/62 exactly as if b and not were absent; 1: 1/61
    assert [(f.item, round(f.score, 12)) for f in fused] == [
        (1, round(1 / 61, 12)),
        (2, round(1 / 62, 12)),
    ]


def test_negative_weights_and_tie_break_on_positive_ranks() -> None:
    # weights apply to negative lists too: unlike weighs 2
    fused = rrf({"text": [1, 2]}, negatives={"unlike": [2, 1]}, weights={"unlike": 2.0})
    assert fused[0].score == pytest.approx(1 / 61 - 2 / 62)
    assert fused[1].score == pytest.approx(1 / 62 - 2 / 61)
    assert [f.item for f in fused] == [1, 2]
    # A tie on the score: the best POSITIVE rank decides, not the negative list's rank 1.
    # a: 5 6   b: 6 5  -> both 1/61 + 1/62; the negative list ranks 6 at 1 and 5 at 1 too
    tied = rrf({"a": [6, 5], "b": [5, 6]}, negatives={"n1": [6], "n2": [5]})
    assert tied[0].score == pytest.approx(tied[1].score)
    assert [f.item for f in tied] == [5, 6]  # equal best positive rank (1): the smaller id
    # The best positive rank decides before the id: a: 7 4, b: 9 4, and a negative list with a
    # weight that brings 7 (1/61 from a) down to exactly 4's 2/62.
    weight = (1 / 61 - 2 / 62) * 61
    fused = rrf({"a": [7, 4], "b": [9, 4]}, negatives={"unlike": [7]}, weights={"unlike": weight})
    assert [round(f.score, 12) for f in fused[:2]] == [round(2 / 62, 12)] * 2
    assert [f.item for f in fused] == [7, 4, 9]  # 7 was 1st in a; 4 never better than 2nd


def test_a_list_cannot_be_both_positive_and_negative() -> None:
    with pytest.raises(ValueError, match="both"):
        rrf({"a": [1]}, negatives={"a": [1]})
    with pytest.raises(ValueError, match="unknown"):
        rrf({"a": [1]}, negatives={"n": [1]}, weights={"m": 1.0})


def test_limit_keeps_the_best() -> None:
    lists = {"a": [1, 2, 3, 4], "b": [3, 1, 5]}
    assert rrf(lists, limit=2) == rrf(lists)[:2]
    assert rrf(lists, limit=None) == rrf(lists)
