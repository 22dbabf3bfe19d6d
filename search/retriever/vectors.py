"""Each search's query vector, and the feature whose stored vectors it is compared with.

A search's feature "active" means the feature active at query time (search/features.py), so
switching models needs no retriever edit; a named feature is used as is; a feature URI
(search/feature_uris.py) means the feature of the collections' extractor it names: for the
configured model that is the active feature, as with "active".

A region search crops its picture first: a stored artwork's original file, or the upload. Its
vector is cached under the feature, the picture's SHA-256 and the box (4 decimals), so drawing
the same box again, or re-weighting, encodes nothing.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from django.db.models import Q
from PIL import Image

from gallery.images import ImageError, load_image, sha256_bytes
from gallery.models import Artwork
from search import encoder as encoders
from search.config import ACTIVE_FEATURE
from search.errors import (
    BadImage,
    BadRegion,
    EncoderUnavailable,
    FeatureUnavailable,
    NotEmbedded,
    UnknownArtwork,
)
from search.knn import stored_vector
from search.models import Feature
from search.retriever import cache
from search.retriever.plan import PlannedSearch

# The image tower's input is 224 px square: a query image decoded no smaller loses nothing it sees.
QUERY_IMAGE_SIDE = 224
# A region's smallest side in the source picture's pixels: below it the crop is mostly
# interpolation.
MIN_REGION_PIXELS = 16


@dataclass(frozen=True)
class QueryVector:
    feature: Feature
    vector: np.ndarray
    exclude_id: int | None = None  # a document's own artwork, left out of its neighbours
    cached: bool = False  # a text's or a region's vector that came from the cache


def query_vector(planned: PlannedSearch) -> QueryVector:
    """The vector a text, content or document search compares with its feature's vectors."""
    if planned.mode == "document":
        assert planned.document_id is not None
        return _document_query(planned.document_id, planned)
    if planned.mode == "text":
        feature, encoder = _feature_and_encoder(planned.search.feature_ref)
        found = cache.get_text_vector(feature_name=feature.name, text=planned.text)
        if found is not None:
            return QueryVector(feature=feature, vector=found, cached=True)
        vector = encoder.encode_texts([planned.text])[0]
        cache.set_text_vector(feature_name=feature.name, text=planned.text, vector=vector)
        return QueryVector(feature=feature, vector=vector)
    if planned.region is not None:
        return _region_query(planned)
    assert planned.image is not None  # content
    try:  # before loading any model: a bad upload is refused cheaply
        loaded = load_image(planned.image, reduce_to=QUERY_IMAGE_SIDE)
    except ImageError as exc:
        raise BadImage(f"The image cannot be used: {exc}") from exc
    feature, encoder = _feature_and_encoder(planned.search.feature_ref)
    return QueryVector(feature=feature, vector=encoder.encode_images([loaded.image])[0])


def _region_query(planned: PlannedSearch) -> QueryVector:
    """The vector of a region's crop, from the cache when the same box of the same picture was
    encoded before."""
    region = planned.region
    assert region is not None
    feature, encoder = _feature_and_encoder(planned.search.feature_ref)
    box = region.box()
    artwork: Artwork | None = None
    if region.document_id is not None:
        artwork = (
            Artwork.objects.only("pk", "image", "image_sha256", "width", "height")
            .filter(pk=region.document_id)
            .first()
        )
        if artwork is None:
            raise UnknownArtwork(f"There is no artwork with id {region.document_id}.")
        if not artwork.image:
            raise BadRegion(f"Artwork {artwork.pk} has no image to cut a region from.")
        source = f"artwork:{artwork.pk}:{artwork.image_sha256}"
        size = (artwork.width, artwork.height) if artwork.width and artwork.height else None
        if size is not None:  # refused before reading the file when the stored size tells
            check_region_pixels(box, size)
    else:
        assert planned.image is not None  # plan.check_inputs requires the upload
        source = f"upload:{sha256_bytes(planned.image)}"
        size = None
    key = cache.region_vector_key(feature_name=feature.name, source=source, box=box)
    found = cache.get_region_vector(key)
    if found is not None:
        return QueryVector(feature=feature, vector=found, cached=True)
    if artwork is not None:
        crop = _artwork_crop(artwork, box, size)
    else:
        assert planned.image is not None
        crop = _upload_crop(planned.image, box)
    vector = encoder.encode_images([crop])[0]
    cache.set_region_vector(key, vector)
    return QueryVector(feature=feature, vector=vector)


def check_region_pixels(box: tuple[float, float, float, float], size: tuple[int, int]) -> None:
    """BadRegion when the box covers fewer than MIN_REGION_PIXELS of the source on a side."""
    width, height = round(box[2] * size[0]), round(box[3] * size[1])
    if width < MIN_REGION_PIXELS or height < MIN_REGION_PIXELS:
        raise BadRegion(
            f"The region is {width}×{height} pixels of the {size[0]}×{size[1]} picture; each "
            f"side needs at least {MIN_REGION_PIXELS} pixels."
        )


def _decode_side(box: tuple[float, float, float, float]) -> int:
    """The picture's side to decode at so that the crop still covers the model's input."""
    return math.ceil(QUERY_IMAGE_SIDE / max(min(box[2], box[3]), 1e-6))


def _crop(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    x, y, width, height = box
    w, h = image.size
    left, top = round(x * w), round(y * h)
    right, bottom = max(left + 1, round((x + width) * w)), max(top + 1, round((y + height) * h))
    return image.crop((left, top, min(right, w), min(bottom, h)))


def _artwork_crop(
    artwork: Artwork, box: tuple[float, float, float, float], size: tuple[int, int] | None
) -> Image.Image:
    """The box cut from the artwork's original file (stored upright, see gallery/images.py),
    decoded at a reduced JPEG scale when the crop stays large enough."""
    try:
        with artwork.image.open("rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise BadRegion(f"The original image of artwork {artwork.pk} cannot be read.") from exc
    # Only a JPEG decodes at a reduced scale; other stored originals are decoded whole, as at
    # ingest, rather than held to a query upload's smaller full-decode limit.
    jpeg = (artwork.image.name or "").lower().endswith((".jpg", ".jpeg"))
    try:
        loaded = load_image(data, reduce_to=_decode_side(box) if jpeg and size else None)
    except ImageError as exc:
        raise BadRegion(
            f"The original image of artwork {artwork.pk} cannot be used: {exc}"
        ) from exc
    if size is None:
        check_region_pixels(box, loaded.image.size)
    return _crop(loaded.image, box)


def _upload_crop(data: bytes, box: tuple[float, float, float, float]) -> Image.Image:
    try:
        loaded = load_image(data, reduce_to=_decode_side(box))
    except ImageError as exc:
        raise BadImage(f"The image cannot be used: {exc}") from exc
    check_region_pixels(box, _upright_size(data))
    return _crop(loaded.image, box)


def _upright_size(data: bytes) -> tuple[int, int]:
    """The picture's size as shown (EXIF orientation applied), from its header: the decoded
    image may be a reduced JPEG scale of it."""
    with Image.open(io.BytesIO(data)) as probe:
        width, height = probe.size
        if probe.getexif().get(0x0112, 1) in {5, 6, 7, 8}:  # turned a quarter
            return height, width
    return width, height


def _document_query(artwork_id: int, planned: PlannedSearch) -> QueryVector:
    if planned.collection:
        _require_in_collection(artwork_id, planned.collection)
    try:
        feature = _feature(planned.search.feature_ref)
    except FeatureUnavailable:
        _require_artwork(artwork_id)  # an unknown artwork is a 404 first
        raise
    vector = stored_vector(artwork_id=artwork_id, feature_id=feature.pk)
    if vector is None:
        _require_artwork(artwork_id)
        raise NotEmbedded(
            f"Artwork {artwork_id} has no embedding yet under {feature.name}; "
            "try again once it has been processed."
        )
    return QueryVector(feature=feature, vector=vector, exclude_id=artwork_id)


def _uri_location(ref: str | None) -> tuple[bool, str | None]:
    """(whether `ref` is a feature URI, the model location it resolves to: None = the
    configured model, whose feature is the active one)."""
    if ref is None or "://" not in ref:
        return False, None
    from search.feature_uris import UnknownFeatureURI, model_for_uri
    from search.features import model_location

    try:
        return True, model_location(model_for_uri(ref))
    except (UnknownFeatureURI, ValueError) as exc:
        raise FeatureUnavailable(f"The feature URI cannot be used: {exc}") from exc


def _feature(ref: str | None) -> Feature:
    is_uri, location = _uri_location(ref)
    if is_uri:
        if location is None:
            return _feature(ACTIVE_FEATURE)
        # Another model's feature: the newest one computed with it (see features.feature_for).
        by_model = Feature.objects.filter(model_name=location).order_by("-created_at").first()
        if by_model is None:
            raise FeatureUnavailable(
                f"Nothing has been embedded yet under {ref} (model {location!r})."
            )
        return by_model
    if ref in (None, "", ACTIVE_FEATURE):
        feature = Feature.objects.filter(is_active=True).first()
        if feature is None:
            raise FeatureUnavailable(
                "No embedding feature is active yet: the collection has not been embedded."
            )
        return feature
    named = Feature.objects.filter(name=ref).first()
    if named is None:
        raise FeatureUnavailable(f"There is no embedding feature named {ref!r}.")
    return named


def _feature_and_encoder(ref: str | None) -> tuple[Feature, encoders.Encoder]:
    """The feature and an encoder whose vectors live in it (the old model during a switch)."""
    from search.features import FeatureMismatch, encoder_for, encoder_for_feature, query_encoder

    is_uri, location = _uri_location(ref)
    try:
        if ref in (None, "", ACTIVE_FEATURE) or (is_uri and location is None):
            encoder, feature = query_encoder()
            return feature, encoder
        if is_uri:
            encoder = encoder_for(location, for_queries=True)
            found = Feature.objects.filter(name=encoder.feature_name).first()
            if found is None:
                raise FeatureUnavailable(f"Nothing has been embedded yet under {ref}.")
            return found, encoder
        feature = _feature(ref)
        # A curator may have named the feature; its checkpoint says which encoder fills it.
        encoder = encoder_for_feature(feature, for_queries=True)
    except encoders.EncoderLoadError as exc:
        raise EncoderUnavailable(f"The query encoder cannot be loaded: {exc}") from exc
    except FeatureMismatch as exc:
        raise FeatureUnavailable(f"The query encoder is not available: {exc}") from exc
    return feature, encoder


def _require_in_collection(artwork_id: int, collection: str) -> None:
    """UnknownArtwork unless the artwork belongs to `collection` (a name or an id)."""
    in_collection = Artwork.objects.filter(pk=artwork_id).filter(
        Q(collection__name=collection)
        | (Q(collection_id=int(collection)) if collection.isdigit() else Q(pk__in=[]))
    )
    if not in_collection.exists():
        _require_artwork(artwork_id)
        raise UnknownArtwork(f"Artwork {artwork_id} is not in the collection {collection!r}.")


def _require_artwork(artwork_id: int) -> None:
    if not Artwork.objects.filter(pk=artwork_id).exists():
        raise UnknownArtwork(f"There is no artwork with id {artwork_id}.")
