"""The search page's state, parsed from and written back to its URL.

Every search is a URL (/?q=...&similar=<id>&upload=<id>&classification=...), so the back button,
reloads and shared links all repeat it. Malformed values are dropped rather than refused: a
hand-edited link still shows something sensible.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlencode

from django.http import QueryDict

from gallery.uploads import is_upload_id

MAX_TEXT = 500
MAX_OFFSET = 10_000
FILTER_NAMES = ("classification", "artist", "year_from", "year_to", "source")


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
    offset: int = 0

    @classmethod
    def from_params(cls, params: QueryDict | dict[str, str]) -> SearchQuery:
        get = params.get
        upload = _text(get("upload"), 64)
        return cls(
            q=_text(get("q"), MAX_TEXT),
            similar=_positive_int(get("similar")),
            upload=upload if is_upload_id(upload) else "",
            classification=_text(get("classification"), 128),
            artist=_text(get("artist"), 200),
            year_from=_year(get("year_from")),
            year_to=_year(get("year_to")),
            source=_text(get("source"), 32),
            offset=min(_positive_int(get("offset")) or 0, MAX_OFFSET),
        )

    @property
    def has_inputs(self) -> bool:
        """Something for the retriever to search with (filters alone only browse)."""
        return bool(self.q or self.similar or self.upload)

    @property
    def active_filter_count(self) -> int:
        return sum(1 for name in FILTER_NAMES if getattr(self, name) not in ("", None))

    def but(self, **changes: Any) -> SearchQuery:
        """A copy with `changes`; any change other than the offset starts from the first page."""
        if "offset" not in changes:
            changes["offset"] = 0
        return replace(self, **changes)

    def params(self) -> dict[str, str]:
        """The non-empty fields, in a stable order, as URL parameters."""
        out: dict[str, str] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value in ("", None) or (field.name == "offset" and value == 0):
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


def _positive_int(value: str | None) -> int | None:
    try:
        number = int((value or "").strip())
    except ValueError:
        return None
    return number if number > 0 else None


def _year(value: str | None) -> int | None:
    try:
        number = int((value or "").strip())
    except ValueError:
        return None
    return number if -10_000 <= number <= 10_000 else None
