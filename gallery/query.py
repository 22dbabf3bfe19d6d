"""The search page's state, parsed from and written back to its URL.

Every search is a URL (/?q=...&similar=<id>&upload=<id>&refs=17,23&unlike=5&region=...&w.text=2
&classification=...), so the back button, reloads and shared links all repeat it. Values a person
typed (the words, the filters) are checked and a problem is reported beside its field in plain
words. Of the values only a link carries, those that cannot mean anything else (a negative id, an
unknown upload, a repeated reference) are dropped quietly; those that were meant as something
(references that are not numbers, a weight of 99, a region outside the picture) are reported
under the link's own names (LINK_FIELDS) and left out, so the page can offer the search without
them.
"""

from __future__ import annotations

import contextlib
import math
import re
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
# What a link carries beyond the form's fields; a problem with one is the link's, not a field's.
LINK_FIELDS = ("refs", "unlike", "region", "weights")
# The link's inputs that the search form carries as hidden fields (chips and the tray show them).
STATE_PARAMS = ("refs", "unlike", "unlike_upload", "region", "region_of")
WEIGHT_PREFIX = "w."  # w.<search name>=<weight>
MAX_PAGE_WEIGHT = 3.0  # the weight controls' range is [0, MAX_PAGE_WEIGHT]
WEIGHT_STEP = 0.25
REGION_DECIMALS = 4
# A search's reported name: its base name, and ":<artwork id>" for one of several references.
_SEARCH_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}(:[1-9][0-9]{0,11})?")
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
class PageRegion:
    """A box over a picture, relative to its size (0..1, origin top-left), of the artwork
    `document_id` or (None) of the uploaded image."""

    x: float
    y: float
    width: float
    height: float
    document_id: int | None = None

    @property
    def box(self) -> str:
        """The box as the URL writes it: 'x,y,w,h' at most REGION_DECIMALS decimals each."""
        return ",".join(_decimal(v) for v in (self.x, self.y, self.width, self.height))

    @property
    def of(self) -> str:
        return str(self.document_id) if self.document_id else "upload"


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
    refs: tuple[int, ...] = ()  # the tray: positive references, in the order they were added
    unlike: tuple[int, ...] = ()  # artworks marked "less like this"
    unlike_upload: bool = False  # the upload is a "less like this" example, not the picture
    region: PageRegion | None = None
    weights: tuple[tuple[str, float], ...] = ()  # (search name, weight), names sorted; never 1
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
        similar = _positive_int(get("similar"))
        upload = upload if is_upload_id(upload) else ""
        most = int(settings.SEARCH_MAX_REFERENCES)
        refs = _ids("refs", get("refs"), most, errors)
        refs = tuple(i for i in refs if i != similar)  # one document search is enough
        unlike = tuple(i for i in _ids("unlike", get("unlike"), most, errors) if i not in refs)
        region = _region(get("region"), get("region_of"), errors)
        if region is not None and region.document_id is None and not upload:
            region = None  # the region of an upload that has left the search
        return cls(
            similar=similar,
            upload=upload,
            refs=refs,
            unlike=unlike,
            unlike_upload=bool(upload)
            and get("unlike_upload") == "1"
            and (region is None or region.document_id is not None),
            region=region,
            weights=_weights(params, errors),
            year_from=year_from,
            year_to=year_to,
            offset=min(_positive_int(get("offset")) or 0, MAX_OFFSET),
            shown=min(_positive_int(get("shown")) or 0, MAX_SHOWN),
            errors=tuple(errors),
            **texts,
        )

    @property
    def has_inputs(self) -> bool:
        """Something for the retriever to search with (filters alone only browse; "less like
        this" examples only demote what the other inputs find)."""
        return bool(self.q or self.similar or self.positive_upload or self.refs or self.region)

    @property
    def positive_upload(self) -> bool:
        return bool(self.upload) and not self.unlike_upload

    @property
    def negatives(self) -> bool:
        return bool(self.unlike or (self.upload and self.unlike_upload))

    @property
    def weight_map(self) -> dict[str, float]:
        return dict(self.weights)

    def only_weights(self, names: set[str]) -> SearchQuery:
        """A copy without the weights of searches that do not run (an input since removed)."""
        kept = tuple((name, value) for name, value in self.weights if name in names)
        return self if kept == self.weights else replace(self, weights=kept)

    @property
    def link_errors(self) -> tuple[FieldError, ...]:
        return tuple(error for error in self.errors if error.field in LINK_FIELDS)

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
            if field.name == "errors" or value in ("", None, 0, (), False):
                continue
            if field.name == "weights":
                for name, weight in value:
                    out[WEIGHT_PREFIX + name] = _decimal(weight)
            elif field.name in ("refs", "unlike"):
                out[field.name] = ",".join(str(i) for i in value)
            elif field.name == "unlike_upload":
                if self.upload:
                    out[field.name] = "1"
            elif field.name == "region":
                if value.document_id or self.upload:
                    out["region"], out["region_of"] = value.box, value.of
            else:
                out[field.name] = str(value)
        return out

    def url(self, path: str = "/") -> str:
        params = self.params()
        return f"{path}?{urlencode(params, safe=',:')}" if params else path


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


def _decimal(value: float) -> str:
    """1.0 -> '1', 0.25 -> '0.25', 0.12345 -> '0.1235'."""
    text = f"{value:.{REGION_DECIMALS}f}".rstrip("0").rstrip(".")
    return text or "0"


def _ids(name: str, value: str | None, most: int, errors: list[FieldError]) -> tuple[int, ...]:
    """Comma-separated artwork ids, order kept and repeats dropped; at most `most`."""
    text = (value or "").strip()
    if not text:
        return ()
    what = "references" if name == "refs" else "“less like this” examples"
    ids: list[int] = []
    for part in text.split(","):
        number = _positive_int(part)
        if number is None or not part.strip().isdigit():
            errors.append(
                FieldError(
                    name,
                    f"The link's {what} “{text[:40]}” are not all artwork numbers, so they "
                    "were left out.",
                )
            )
            return ()
        if number not in ids:
            ids.append(number)
    if len(ids) > most:
        errors.append(
            FieldError(
                name,
                f"A search takes at most {most} {what}; the link has {len(ids)}, so only the "
                f"first {most} were kept.",
            )
        )
        return tuple(ids[:most])
    return tuple(ids)


def _region(box: str | None, of: str | None, errors: list[FieldError]) -> PageRegion | None:
    """The region=x,y,w,h of region_of=<artwork id>|upload, or None (reported if malformed)."""
    text, source = (box or "").strip(), (of or "").strip()
    if not text and not source:
        return None
    problem = ""
    values: list[float] = []
    with contextlib.suppress(ValueError):
        values = [float(part) for part in text.split(",")]
    document_id = _positive_int(source) if source.isdigit() else None
    if not text:
        problem = "names a picture but no box on it"
    elif len(values) != 4 or not all(math.isfinite(v) for v in values):
        problem = "is not four numbers: x, y, width and height"
    elif source != "upload" and document_id is None:
        problem = "does not say which picture it is on (an artwork's number, or upload)"
    else:
        x, y, width, height = (round(v, REGION_DECIMALS) for v in values)
        if min(x, y) < 0 or width <= 0 or height <= 0 or x + width > 1 or y + height > 1:
            problem = (
                "is not inside the picture: x and y from 0, width and height above 0, and "
                "x + width and y + height at most 1"
            )
        else:
            return PageRegion(x=x, y=y, width=width, height=height, document_id=document_id)
    errors.append(FieldError("region", f"The link's region “{text[:60]}” {problem}."))
    return None


def _weights(
    params: QueryDict | dict[str, str], errors: list[FieldError]
) -> tuple[tuple[str, float], ...]:
    """The w.<search name>=<weight> parameters; the default, 1, is left out."""
    weights: dict[str, float] = {}
    for key in params:
        if not key.startswith(WEIGHT_PREFIX):
            continue
        name, text = key[len(WEIGHT_PREFIX) :], (params.get(key) or "").strip()
        if not _SEARCH_NAME.fullmatch(name):
            errors.append(FieldError("weights", f"“{key[:50]}” names no search of this page."))
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not 0 <= value <= MAX_PAGE_WEIGHT:
            errors.append(
                FieldError(
                    "weights",
                    f"The weight of “{name}” must be a number from 0 to {MAX_PAGE_WEIGHT:g}, "
                    f"not “{text[:20]}”; it was left at 1.",
                )
            )
            continue
        value = round(value, REGION_DECIMALS)
        if value != 1.0:
            weights[name] = value
    return tuple(sorted(weights.items()))


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
