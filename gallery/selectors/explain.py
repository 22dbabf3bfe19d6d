""" "Why this result": a hit's place in each search that ran and its fused score, in plain words
("3rd by your words, 12th like “Saint Francis”, 1st by your picture"), from the per-search ranks
the retriever returns with every result."""

from __future__ import annotations

from collections.abc import Sequence

from search.facets import ordinal
from search.retriever import ResultItem, SearchStats

# How each kind of search reads after a rank ("3rd by your words").
PHRASES = {
    "text": "by your words",
    "content": "by your picture",
    "keywords": "by the keywords in your words",
}


def explanation(
    *, item: ResultItem, searches: list[SearchStats], references: Sequence[str]
) -> tuple[str, ...]:
    """Sentences saying where each search placed `item`, which searches left it out, and its
    fused score. `references`: the titles of the artworks searched "like" (document searches)."""
    places: list[str] = []
    missing: list[str] = []
    for search in searches:
        phrase = _phrase(search=search, references=references)
        rank = item.ranks.get(search.name)
        if rank is None:
            missing.append(f"not among the {search.top_k} closest {phrase}")
        else:
            places.append(f"{ordinal(rank)} {phrase}")
    sentences = []
    if places:
        sentences.append(_capitalised(", ".join(places)) + ".")
    if missing:
        sentences.append(_capitalised(", ".join(missing)) + ".")
    if len(searches) > 1:
        sentences.append(
            f"Fused score {item.score:.4f}: every search that found it adds more the higher it "
            "placed it, so good places in several searches rank first."
        )
    else:
        sentences.append(f"Score {item.score:.4f}, from its place in the one search.")
    return tuple(sentences)


def _phrase(*, search: SearchStats, references: Sequence[str]) -> str:
    if search.input_mode == "document":
        return f"like “{references[0]}”" if len(references) == 1 else "like your reference"
    return PHRASES.get(search.input_mode, f"by the search “{search.name}”")


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
