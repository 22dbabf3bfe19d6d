"""Reciprocal Rank Fusion (Cormack, Clarke & Büttcher, 2009) as a pure function, with negative
lists ("less like this"):

    score(d) = Σ_{positive lists i that hold d} wᵢ / (k + rankᵢ(d))
             − Σ_{negative lists j that hold d} wⱼ / (k + rankⱼ(d))

Ranks start at 1; a list that lacks d adds (or takes away) nothing. Every weight defaults to 1,
negative ones included: an item a negative list ranks r loses exactly what a positive list
ranking it r gives. Negative lists only demote: the output holds the items of the positive lists
alone, each with its rank in every list that holds it, negative ones included.

Ties are broken deterministically, so the same lists always give the same order:
  1. higher fused score (compared to 12 decimals, so float summation order cannot matter);
  2. then the better (smaller) best single rank in a positive list: an item that some search
     put near the top beats one that is merely middling everywhere;
  3. then the smaller id.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

DEFAULT_K = 60
DEFAULT_WEIGHT = 1.0  # of a positive and of a negative list alike

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class Fused(Generic[T]):
    item: T
    score: float
    ranks: dict[str, int] = field(default_factory=dict)  # list name -> rank (from 1)


def rrf(
    rankings: Mapping[str, Sequence[T]],
    *,
    k: float = DEFAULT_K,
    weights: Mapping[str, float] | None = None,
    negatives: Mapping[str, Sequence[T]] | None = None,
    limit: int | None = None,
) -> list[Fused[T]]:
    """Fuse ranked lists (best first, keyed by list name) into one list, best first.

    `negatives` are lists whose ranks subtract (names distinct from the positive lists'); an
    item only they hold is not output. `weights` may name lists of either kind. An item repeated
    within one list keeps its first (best) rank there. Items must be orderable among themselves
    for the final tie-break (ids are). `limit` keeps only the best `limit` items.
    """
    if k < 0:
        raise ValueError("k must be ≥ 0")
    negatives = negatives or {}
    both = set(rankings) & set(negatives)
    if both:
        raise ValueError(f"lists both positive and negative: {sorted(both)}")
    weights = weights or {}
    unknown = set(weights) - set(rankings) - set(negatives)
    if unknown:
        raise ValueError(f"weights for unknown lists: {sorted(unknown)}")
    scores: dict[T, float] = {}
    ranks: dict[T, dict[str, int]] = {}
    best: dict[T, int] = {}  # the best rank in a positive list
    for name, items in rankings.items():
        weight = weights.get(name, DEFAULT_WEIGHT)
        for position, item in enumerate(items, start=1):
            item_ranks = ranks.setdefault(item, {})
            if name in item_ranks:
                continue
            item_ranks[name] = position
            scores[item] = scores.get(item, 0.0) + weight / (k + position)
            best[item] = min(best.get(item, position), position)
    for name, items in negatives.items():
        weight = weights.get(name, DEFAULT_WEIGHT)
        for position, item in enumerate(items, start=1):
            if item not in ranks or name in ranks[item]:  # absent: no positive list holds it
                continue
            ranks[item][name] = position
            scores[item] -= weight / (k + position)
    # Scores are compared rounded: the same ranks summed in another order can differ in the last
    # bit, and that must not decide the order.
    ordered = sorted(
        scores,
        key=lambda item: (-round(scores[item], 12), best[item], item),  # type: ignore[type-var]
    )
    return [Fused(item=item, score=scores[item], ranks=ranks[item]) for item in ordered[:limit]]
