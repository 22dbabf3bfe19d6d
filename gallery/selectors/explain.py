""" "Why this result": a hit's place in each search that ran and its fused score, in plain words
("3rd by your words, 12th like “Saint Francis”, 40th unlike “The Bay” (−0.0100)"), from the
per-search ranks the retriever returns with every result, negative searches included."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from search.facets import ordinal
from search.fusion import DEFAULT_K, DEFAULT_WEIGHT
from search.retriever import ResultItem, SearchStats

# How each kind of search reads after a rank ("3rd by your words"), by its configured name.
PHRASES = {
    "text": "by your words",
    "content": "by your picture",
    "keywords": "by the keywords in your words",
    "region": "by your region",
    "unlike-image": "unlike your image",
}
# The same searches named as a control's label ("Your words").
LABELS = {
    "text": "Your words",
    "content": "Your picture",
    "keywords": "The keywords in your words",
    "region": "Your region",
    "unlike-image": "Less like your image",
}


def explanation(
    *,
    item: ResultItem,
    searches: Sequence[SearchStats],
    references: Sequence[str],
    titles: Mapping[int, str] | None = None,
    k: float = DEFAULT_K,
) -> tuple[str, ...]:
    """Sentences saying where each search placed `item` (what each "less like this" example
    took away, each weight other than 1), which searches left it out, and its fused score.
    `references`: the titles of the artworks searched "like" (the document search);
    `titles`: the titles of the reference and negative artworks, by id."""
    places: list[str] = []
    missing: list[str] = []
    for search in searches:
        phrase = _phrase(search=search, titles=titles or {}, references=references)
        rank = item.ranks.get(search.name)
        if rank is None:
            missing.append(f"not among the {search.top_k} closest {phrase}")
            continue
        notes = []
        if search.polarity == "negative":
            notes.append(f"−{search.weight / (k + rank):.4f}")
        if search.weight != DEFAULT_WEIGHT:
            notes.append(f"weight {search.weight:g}")
        places.append(f"{ordinal(rank)} {phrase}" + (f" ({', '.join(notes)})" if notes else ""))
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
    if any(search.polarity == "negative" for search in searches):
        sentences.append(
            f"A “less like this” example that finds it takes away w⁻/({k:g} + its rank), as "
            f"much as a search placing it there adds; w⁻ = {DEFAULT_WEIGHT:g} unless its "
            "weight is changed."
        )
    return tuple(sentences)


def search_label(
    *, search: SearchStats, titles: Mapping[int, str], references: Sequence[str]
) -> str:
    """The search as a weight control names it: "Your words", "Like “Saint Francis”"."""
    title = _title(search=search, titles=titles, references=references)
    base = _base(search)
    if search.input_mode == "document" and title:
        return f"Less like “{title}”" if search.polarity == "negative" else f"Like “{title}”"
    return LABELS.get(base) or LABELS.get(search.input_mode) or f"The search “{search.name}”"


def _phrase(*, search: SearchStats, titles: Mapping[int, str], references: Sequence[str]) -> str:
    title = _title(search=search, titles=titles, references=references)
    if search.input_mode == "document":
        if not title:
            return "like your reference"
        return f"unlike “{title}”" if search.polarity == "negative" else f"like “{title}”"
    known = PHRASES.get(_base(search)) or PHRASES.get(search.input_mode)
    return known or f"by the search “{search.name}”"


def _title(*, search: SearchStats, titles: Mapping[int, str], references: Sequence[str]) -> str:
    """The title of the artwork a document search searched by ("" if unknown)."""
    document_id = search.document_id
    if document_id is None:
        _, _, rest = search.name.partition(":")
        document_id = int(rest) if rest.isdigit() else None
    if document_id is not None and document_id in titles:
        return titles[document_id]
    if search.name == "document" and len(references) == 1:
        return references[0]
    return ""


def _base(search: SearchStats) -> str:
    """The configured name: "reference:17" -> "reference"."""
    return search.name.partition(":")[0]


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]
