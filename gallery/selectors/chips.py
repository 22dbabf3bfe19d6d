"""The query's non-text inputs as the page shows them: the artworks and upload it names,
resolved into chips and the tray of references (what no longer exists becomes a notice), and
one weight control per search that ran."""

from __future__ import annotations

import io
from collections.abc import Sequence

from django.urls import reverse
from PIL import Image

from gallery.models import Artwork
from gallery.query import PageRegion, SearchQuery
from gallery.selectors.explain import search_label
from gallery.selectors.outcome import (
    Chip,
    Crop,
    SearchOutcome,
    TrayItem,
    WeightControl,
    and_list,
)
from gallery.uploads import upload_load, upload_preview
from search.retriever import SearchStats


def resolved(*, query: SearchQuery) -> tuple[SearchOutcome, bytes | None]:
    """The outcome with the chips and the tray of the query's non-text inputs, and the uploaded
    image's bytes (read once here and handed to the retriever); inputs that no longer exist
    become notices and leave the query."""
    outcome = SearchOutcome(query=query)
    upload = upload_load(upload_id=query.upload) if query.upload else None
    if query.upload and upload is None:
        outcome.notices.append("The uploaded image has expired; upload it again to search by it.")
        region = query.region if query.region and query.region.document_id else None
        query = query.but(
            upload="", unlike_upload=False, region=region, offset=query.offset, shown=query.shown
        )
    artworks = _artworks(query)
    outcome.titles = {pk: artwork.title or "Untitled" for pk, artwork in artworks.items()}
    missing = [pk for pk in _artwork_ids(query) if pk not in artworks]
    if missing:
        numbers = and_list([str(pk) for pk in missing], quoted=False)
        outcome.notices.append(
            f"There is no artwork {numbers} in the collection."
            if len(missing) == 1
            else f"There are no artworks {numbers} in the collection."
        )
        region = query.region
        if region is not None and region.document_id in missing:
            region = None
        query = query.but(
            similar=None if query.similar in missing else query.similar,
            refs=tuple(pk for pk in query.refs if pk not in missing),
            unlike=tuple(pk for pk in query.unlike if pk not in missing),
            region=region,
            offset=query.offset,
            shown=query.shown,
        )
    query = query.only_weights(active_searches(query))
    outcome.query = query
    home = reverse("home")
    if query.similar:
        reference = artworks[query.similar]
        outcome.chips.append(
            Chip(
                kind="similar",
                label=outcome.titles[reference.pk],
                image_url=reference.thumbnail.url if reference.thumbnail else "",
                remove_url=query.but(similar=None).url(home),
                link_url=reverse("artwork", args=[reference.pk]),
                artwork_id=reference.pk,
            )
        )
    region_of_upload = query.region is not None and query.region.document_id is None
    if query.upload and not query.unlike_upload and not region_of_upload:
        # (A region of the upload stands for it: the region's chip shows it.)
        outcome.chips.append(
            Chip(
                kind="upload",
                label="your image",
                image_url=reverse("upload-preview", args=[query.upload]),
                remove_url=query.but(upload="").url(home),
                less_url=query.but(unlike_upload=True).url(home),
            )
        )
    if query.region is not None:
        outcome.chips.append(_region_chip(query=query, artworks=artworks))
    for pk in query.unlike:
        artwork = artworks[pk]
        outcome.chips.append(
            Chip(
                kind="unlike",
                label=outcome.titles[pk],
                image_url=artwork.thumbnail.url if artwork.thumbnail else "",
                remove_url=query.but(unlike=tuple(i for i in query.unlike if i != pk)).url(home),
                link_url=reverse("artwork", args=[pk]),
                artwork_id=pk,
            )
        )
    if query.upload and query.unlike_upload:
        outcome.chips.append(
            Chip(
                kind="unlike-upload",
                label="your image",
                image_url=reverse("upload-preview", args=[query.upload]),
                remove_url=query.but(upload="", unlike_upload=False).url(home),
                more_url=query.but(unlike_upload=False).url(home),
            )
        )
    outcome.tray = [
        TrayItem(
            artwork_id=pk,
            label=outcome.titles[pk],
            image_url=artworks[pk].thumbnail.url if artworks[pk].thumbnail else "",
            link_url=reverse("artwork", args=[pk]),
            remove_url=query.but(refs=tuple(i for i in query.refs if i != pk)).url(home),
        )
        for pk in query.refs
    ]
    return outcome, upload.data if upload else None


def active_searches(query: SearchQuery) -> set[str]:
    """The names of the searches the query's inputs run (and the base names a weight may use
    for all of a kind): the only weights worth keeping in its URL."""
    names: set[str] = set()
    if query.q:
        names |= {"text", "keywords"}
    region_of_upload = query.region is not None and query.region.document_id is None
    if query.positive_upload and not region_of_upload:
        names.add("content")
    if query.similar:
        names.add("document")
    if query.refs:
        names |= {"reference", *(f"reference:{pk}" for pk in query.refs)}
    if query.region is not None:
        names.add("region")
    if query.unlike:
        names |= {"unlike", *(f"unlike:{pk}" for pk in query.unlike)}
    if query.upload and query.unlike_upload:
        names.add("unlike-image")
    return names


def weight_controls(
    *, searches: Sequence[SearchStats], titles: dict[int, str], references: Sequence[str]
) -> list[WeightControl]:
    """One control per search that ran, when there are several (one search alone gives the
    same order whatever its weight)."""
    if len(searches) < 2:
        return []
    return [
        WeightControl(
            name=search.name,
            label=search_label(search=search, titles=titles, references=references),
            value=search.weight,
            negative=search.polarity == "negative",
        )
        for search in searches
    ]


def _artwork_ids(query: SearchQuery) -> list[int]:
    ids = [query.similar] if query.similar else []
    ids += [*query.refs, *query.unlike]
    if query.region is not None and query.region.document_id:
        ids.append(query.region.document_id)
    return list(dict.fromkeys(ids))


def _artworks(query: SearchQuery) -> dict[int, Artwork]:
    ids = _artwork_ids(query)
    return Artwork.objects.in_bulk(ids) if ids else {}


def _region_chip(*, query: SearchQuery, artworks: dict[int, Artwork]) -> Chip:
    region = query.region
    assert region is not None
    home = reverse("home")
    if region.document_id:
        artwork = artworks[region.document_id]
        title = artwork.title or "Untitled"
        label = f"A region of “{title}”"
        href = artwork.image.url if artwork.image else ""
        size = (artwork.width or 0, artwork.height or 0)
        link = reverse("artwork", args=[artwork.pk])
    else:
        title, label = "", "A region of your image"
        href = reverse("upload-preview", args=[query.upload])
        size = _upload_size(query.upload)
        link = ""
    return Chip(
        kind="region",
        label=label,
        image_url=href,
        remove_url=query.but(region=None).url(home),
        link_url=link,
        crop=_crop(href=href, size=size, region=region) if href else None,
        artwork_id=region.document_id,
        title=title,
    )


def _crop(*, href: str, size: tuple[int, int], region: PageRegion) -> Crop:
    width, height = size if size[0] and size[1] else (1000, 1000)
    box = (region.x * width, region.y * height, region.width * width, region.height * height)
    return Crop(href=href, width=width, height=height, view_box=" ".join(f"{v:.2f}" for v in box))


def _upload_size(upload_id: str) -> tuple[int, int]:
    """The preview's size (the crop is drawn over it); (0, 0) when it cannot be read."""
    data = upload_preview(upload_id=upload_id)
    if not data:
        return 0, 0
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except OSError:
        return 0, 0
