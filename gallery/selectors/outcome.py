"""What the search page shows of one search: its outcome (cards, total, heading, errors,
facets) and the controls of its non-text inputs (chips, the tray of references, weights)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse

from gallery.query import MAX_PAGE_WEIGHT, STATE_PARAMS, WEIGHT_PREFIX, WEIGHT_STEP, SearchQuery
from gallery.selectors.cards import Card
from gallery.selectors.facets import FacetGroup, facet_groups
from search.facets import Facets

WEIGHT_INPUT_PREFIX = "weight-"  # a weight control's id: the prefix, then its search's name


@dataclass(frozen=True)
class Crop:
    """A region of a picture drawn without a new image: an SVG whose viewBox is the box, in the
    picture's pixels (a strict Content-Security-Policy refuses inline styles)."""

    href: str
    width: int  # the picture's size in the SVG's units
    height: int
    view_box: str


@dataclass(frozen=True)
class Chip:
    """One non-text input of the query, shown as a removable chip."""

    kind: str  # "similar" | "upload" | "unlike" | "unlike-upload" | "region"
    label: str
    image_url: str
    remove_url: str
    link_url: str = ""
    less_url: str = ""  # the upload's "less like this" (it becomes a negative example)
    more_url: str = ""  # a negative upload made the picture to search by again
    crop: Crop | None = None  # a region's picture
    artwork_id: int | None = None
    title: str = ""  # the artwork's title, for a region of an artwork

    @property
    def negative(self) -> bool:
        return self.kind in {"unlike", "unlike-upload"}


@dataclass(frozen=True)
class TrayItem:
    """A reference in the tray: an artwork the search finds more like."""

    artwork_id: int
    label: str
    image_url: str
    link_url: str
    remove_url: str


@dataclass(frozen=True)
class WeightControl:
    """A range input for one search's weight (w.<name>)."""

    name: str
    label: str
    value: float
    negative: bool

    @property
    def field(self) -> str:
        return WEIGHT_PREFIX + self.name

    @property
    def input_id(self) -> str:
        return WEIGHT_INPUT_PREFIX + self.name.replace(":", "-")

    @property
    def shown(self) -> str:
        return f"{self.value:g}"


@dataclass
class SearchOutcome:
    query: SearchQuery
    cards: list[Card] = field(default_factory=list)
    total: int = 0
    mode: str = "browse"  # "browse" (no inputs: the collection, filtered) or "search"
    error: str = ""
    status: int = 200
    timing: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    chips: list[Chip] = field(default_factory=list)
    tray: list[TrayItem] = field(default_factory=list)
    weights: list[WeightControl] = field(default_factory=list)
    titles: dict[int, str] = field(default_factory=dict)  # the query's artworks, by id
    facets: Facets | None = None  # searches only: counts over the whole fused list

    @property
    def max_references(self) -> int:
        return int(settings.SEARCH_MAX_REFERENCES)

    @property
    def tray_full(self) -> bool:
        return len(self.query.refs) >= self.max_references

    @property
    def max_weight(self) -> str:
        return f"{MAX_PAGE_WEIGHT:g}"

    @property
    def weight_step(self) -> str:
        return f"{WEIGHT_STEP:g}"

    @property
    def state_fields(self) -> list[tuple[str, str]]:
        """The inputs the search form carries unseen, so that new words keep them."""
        params = self.query.params()
        return [(name, params[name]) for name in STATE_PARAMS if name in params]

    @property
    def link_errors(self) -> list[str]:
        return [error.message for error in self.query.link_errors]

    @property
    def repair_url(self) -> str:
        """The search without what the link got wrong (the query has left it out)."""
        return self.query.url(reverse("home"))

    @property
    def facet_groups(self) -> list[FacetGroup]:
        if self.facets is None or self.error or not self.cards:
            return []
        return facet_groups(facets=self.facets, query=self.query)

    @property
    def facets_open(self) -> bool:
        """The facets start open when the page is filtered by one of them."""
        return any(link.active for group in self.facet_groups for link in group.links)

    @property
    def next_offset(self) -> int | None:
        following = self.query.offset + len(self.cards)
        return following if self.cards and following < self.total else None

    @property
    def past_end(self) -> bool:
        """A page that starts after the last result (a stale or hand-edited link)."""
        return not self.error and not self.cards and 0 < self.total <= self.query.offset

    @property
    def described(self) -> str:
        """What was searched with, as the heading and title repeat it: 'for “apples”, like
        “Mère Grégoire”'."""
        parts = [f"for “{self.query.q}”"] if self.query.q else []
        parts += [f"like “{chip.label}”" for chip in self.chips if chip.kind == "similar"]
        parts += ["like your image" for chip in self.chips if chip.kind == "upload"]
        parts += [
            chip.label[:1].lower() + chip.label[1:] for chip in self.chips if chip.kind == "region"
        ]
        if len(self.tray) > 2:  # the tray shows them; a heading of six titles reads badly
            parts.append(f"like your {len(self.tray)} references")
        elif self.tray:
            parts.append("like " + and_list([item.label for item in self.tray]))
        unlike = [f"“{chip.label}”" for chip in self.chips if chip.kind == "unlike"]
        if any(chip.kind == "unlike-upload" for chip in self.chips):
            unlike.append("your image")
        if unlike and parts:
            parts.append("less like " + and_list(unlike, quoted=False))
        return ", ".join(parts)

    @property
    def title(self) -> str:
        """What the document title says about this search: '“apples”', 'Like “Mère Grégoire”'."""
        described = self.described.removeprefix("for ")
        if described:
            return described[0].upper() + described[1:]
        return "The collection, filtered" if self.query.active_filter_count else "The collection"


def and_list(names: Sequence[str], *, quoted: bool = True) -> str:
    """'“A”', '“A” and “B”', '“A”, “B” and “C”'."""
    shown = [f"“{name}”" if quoted else name for name in names]
    if len(shown) < 2:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]
