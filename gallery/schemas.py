"""API schemas of the artworks endpoints."""

from __future__ import annotations

from ninja import Schema


class ArtworkOut(Schema):
    id: int
    source: str
    external_id: str
    title: str
    artist: str
    display_date: str
    classification: str
    begin_year: int | None
    end_year: int | None
    thumbnail_url: str
    width: int | None
    height: int | None


class ArtworkDetailOut(ArtworkOut):
    medium: str
    dimensions: str
    credit_line: str
    description: str
    alt_text: str
    source_url: str
    license: str
    image_url: str
    embedded: bool  # has a vector under the active feature: "similar" works


class ArtworkPageOut(Schema):
    items: list[ArtworkOut]
    total: int
    offset: int
    limit: int
