"""Reciprocal Rank Fusion (Cormack, Clarke & Büttcher, 2009) as a pure function.

    score(d) = Σᵢ wᵢ / (k + rankᵢ(d))        ranks start at 1; a list that lacks d adds nothing

Ties are broken deterministically, so the same lists always give the same order:
  1. higher fused score (compared to 12 decimals, so float summation order cannot matter);
  2. then the better (smaller) best single rank: an item that some search put near the top
     beats one that is merely middling everywhere;
  3. then the smaller id.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

DEFAULT_K = 60

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
) -> list[Fused[T]]:
    """Fuse ranked lists (best first, keyed by list name) into one list, best first.

    An item repeated within one list keeps its first (best) rank there. Items must be
    orderable among themselves for the final tie-break (ids are).
    """
    if k < 0:
        raise ValueError("k must be ≥ 0")
    weights = weights or {}
    unknown = set(weights) - set(rankings)
    if unknown:
        raise ValueError(f"weights for unknown lists: {sorted(unknown)}")
    scores: dict[T, float] = {}
    ranks: dict[T, dict[str, int]] = {}
    for name, items in rankings.items():
        weight = weights.get(name, 1.0)
        for position, item in enumerate(items, start=1):
            item_ranks = ranks.setdefault(item, {})
            if name in item_ranks:
                continue
            item_ranks[name] = position
            scores[item] = scores.get(item, 0.0) + weight / (k + position)
    # Scores are compared rounded: the same ranks summed in another order can differ in the last
    # bit, and that must not decide the order.
    ordered = sorted(
        scores,
        key=lambda item: (-round(scores[item], 12), min(ranks[item].values()), item),  # type: ignore[type-var]
    )
    return [Fused(item=item, score=scores[item], ranks=ranks[item]) for item in ordered]
