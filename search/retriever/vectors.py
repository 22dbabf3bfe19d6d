"""Each search's query vector, and the feature whose stored vectors it is compared with.

A search's feature "active" means the feature active at query time (search/features.py), so
switching models needs no retriever edit; a named feature is used as is; a feature URI
(search/feature_uris.py) means the feature of the collections' extractor it names: for the
configured model that is the active feature, as with "active".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Q

from gallery.images import ImageError, load_image
from gallery.models import Artwork
from search import encoder as encoders
from search.config import ACTIVE_FEATURE
from search.errors import (
    BadImage,
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


@dataclass(frozen=True)
class QueryVector:
    feature: Feature
    vector: np.ndarray
    exclude_id: int | None = None  # a document's own artwork, left out of its neighbours
    cached: bool = False  # a text's vector that came from the cache


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
    assert planned.image is not None  # content
    try:  # before loading any model: a bad upload is refused cheaply
        loaded = load_image(planned.image, reduce_to=QUERY_IMAGE_SIDE)
    except ImageError as exc:
        raise BadImage(f"The image cannot be used: {exc}") from exc
    feature, encoder = _feature_and_encoder(planned.search.feature_ref)
    return QueryVector(feature=feature, vector=encoder.encode_images([loaded.image])[0])


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
    from search.features import FeatureMismatch, encoder_for, query_encoder

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
        encoder = encoders.get_encoder(for_queries=True)
        if encoder.feature_name != feature.name:
            encoder = encoders.get_encoder(feature.model_name, for_queries=True)
    except encoders.EncoderLoadError as exc:
        raise EncoderUnavailable(f"The query encoder cannot be loaded: {exc}") from exc
    except FeatureMismatch as exc:
        raise FeatureUnavailable(f"The query encoder is not available: {exc}") from exc
    if encoder.feature_name != feature.name:
        raise FeatureUnavailable(
            f"The query encoder computes {encoder.feature_name} vectors, not {feature.name}."
        )
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
