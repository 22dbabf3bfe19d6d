"""The search page's state, parsed from and written back to its URL.

Every search is a URL (/?q=...&similar=<id>&upload=<id>&classification=...), so the back button,
reloads and shared links all repeat it. Values a person typed (the words, the filters) are checked
and a problem is reported beside its field in plain words; values only a hand-edited link carries
(a negative id, an unknown upload) are dropped, so such a link still shows something sensible.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import QueryDict

from gallery.uploads import is_upload_id
from search.filters import MAX_FILTER_CHARS
from search.validation import text_problem

MAX_OFFSET = 10_000
MAX_SHOWN = 1_000  # results one page may show at once when a visitor's place is restored
FILTER_NAMES = ("classification", "artist", "year_from", "year_to", "source", "collection")
FIELD_NAMES = ("q", *FILTER_NAMES)  # the search form's fields, each with its message
YEAR_RANGE = (-10_000, 10_000)
# Fields named as a visitor reads them, for messages shown beside the field.
FIELD_LABELS = {
    "q": "The search text",
    "classification": "The classification",
    "artist": "The artist",
    "source": "The source",
    "collection": "The collection",
}


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    similar: int | None = None
    upload: str = ""
    classification: str = ""
    artist: str = ""
    year_from: int | None = None
    year_to: int | None = None
    source: str = ""
    collection: str = ""  # a collection's name
    offset: int = 0
    shown: int = 0  # results shown from `offset` (0: one page); "Load more" raises it
    errors: tuple[FieldError, ...] = ()  # not part of the URL

    @classmethod
    def from_params(cls, params: QueryDict | dict[str, str]) -> SearchQuery:
        get = params.get
        errors: list[FieldError] = []
        upload = _text(get("upload"), 64)
        texts = {
            name: _checked_text(name, get(name), limit, errors)
            for name, limit in (
                ("q", settings.SEARCH_MAX_TEXT_CHARS),
                ("classification", MAX_FILTER_CHARS),
                ("artist", MAX_FILTER_CHARS),
                ("source", 32),
                ("collection", 100),
            )
        }
        year_from = _year("year_from", get("year_from"), errors)
        year_to = _year("year_to", get("year_to"), errors)
        if year_from is not None and year_to is not None and year_from > year_to:
            errors.append(
                FieldError(
                    "year_to",
                    f"The end year ({year_to}) is before the start year ({year_from}): "
                    "swap them or change one.",
                )
            )
        return cls(
            similar=_positive_int(get("similar")),
            upload=upload if is_upload_id(upload) else "",
            year_from=year_from,
            year_to=year_to,
            offset=min(_positive_int(get("offset")) or 0, MAX_OFFSET),
            shown=min(_positive_int(get("shown")) or 0, MAX_SHOWN),
            errors=tuple(errors),
            **texts,
        )

    @property
    def has_inputs(self) -> bool:
        """Something for the retriever to search with (filters alone only browse)."""
        return bool(self.q or self.similar or self.upload)

    @property
    def active_filter_count(self) -> int:
        return sum(1 for name in FILTER_NAMES if getattr(self, name) not in ("", None))

    @property
    def field_errors(self) -> dict[str, str]:
        return {error.field: error.message for error in self.errors}

    def but(self, **changes: Any) -> SearchQuery:
        """A copy with `changes`; any change other than paging starts from the first page."""
        if "offset" not in changes:
            changes["offset"] = 0
        if "shown" not in changes:
            changes["shown"] = 0
        return replace(self, **changes)

    def params(self) -> dict[str, str]:
        """The non-empty fields, in a stable order, as URL parameters."""
        out: dict[str, str] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "errors" or value in ("", None, 0):
                continue
            out[field.name] = str(value)
        return out

    def url(self, path: str = "/") -> str:
        params = self.params()
        return f"{path}?{urlencode(params)}" if params else path


def merged_params(*sources: QueryDict) -> dict[str, str]:
    """Later sources win, key by key (the upload POST body over its action URL's query)."""
    out: dict[str, str] = {}
    for source in sources:
        for key in source:
            out[key] = source.get(key, "")
    return out


def _text(value: str | None, limit: int) -> str:
    return " ".join((value or "").split())[:limit]


def _checked_text(name: str, value: str | None, limit: int, errors: list[FieldError]) -> str:
    """The value with its whitespace collapsed and cut at `limit` (the box's own maxlength);
    one with a character no search can use is reported and left out of the search."""
    text = _text(value, limit)
    problem = text_problem(value=text, max_length=limit)
    if problem:
        errors.append(FieldError(name, f"{FIELD_LABELS[name]} {problem}: please retype it."))
        return ""
    return text


def _positive_int(value: str | None) -> int | None:
    try:
        number = int((value or "").strip())
    except ValueError:
        return None
    return number if number > 0 else None


def _year(name: str, value: str | None, errors: list[FieldError]) -> int | None:
    text = (value or "").strip()
    if not text:
        return None
    label = "start" if name == "year_from" else "end"
    try:
        number = int(text)
    except ValueError:
        errors.append(
            FieldError(
                name,
                f"The {label} year “{text[:20]}” is not a year: write it in digits, like 1850.",
            )
        )
        return None
    low, high = YEAR_RANGE
    if not low <= number <= high:
        errors.append(FieldError(name, f"The {label} year must be between {low} and {high}."))
        return None
    return number
