"""Which embedding space is in use, and switching models without mixing two models' vectors.

A Feature is one model + encoder version. Searches use only the active feature. Workers embed
under the feature of the encoder they have loaded (the configured model); when that is not the
active one, a switch is in progress: new vectors fill in the background while searches keep
using the old feature, and `activate_when_complete` switches once every artwork with an image has
a vector under the new feature.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from gallery.models import Artwork
from search.encoder import Encoder, get_encoder
from search.models import Embedding, Feature

logger = logging.getLogger(__name__)


class FeatureMismatch(RuntimeError):
    """The active feature's model now loads as another feature (its vectors cannot be queried)."""


def _lock_features() -> None:
    """Serialise activations (inside a transaction): locking one Feature row would let two
    processes activating two different features both proceed, and the loser would hit the
    one-active constraint. The lock ends with the transaction; readers are not blocked."""
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {Feature._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")


def feature_for(encoder: Encoder) -> Feature:
    """The Feature row of `encoder` (created inactive when new)."""
    feature, _ = Feature.objects.get_or_create(
        name=encoder.feature_name,
        defaults={"model_name": encoder.model_name, "dimensions": encoder.dimensions},
    )
    return feature


def target_feature() -> Feature:
    """The feature new vectors are computed under: the configured model's."""
    return feature_for(get_encoder())


def active_feature() -> Feature:
    """The feature searches use. With none yet, the configured model's becomes active."""
    feature = Feature.objects.filter(is_active=True).first()
    if feature is not None:
        return feature
    target = target_feature()
    with transaction.atomic():
        _lock_features()
        current = Feature.objects.filter(is_active=True).first()
        if current is not None:
            return current
        target.is_active, target.activated_at = True, timezone.now()
        target.save(update_fields=["is_active", "activated_at"])
    logger.info("Activated embedding feature %s (the first one)", target)
    return target


def query_encoder() -> tuple[Encoder, Feature]:
    """The encoder whose vectors match the active feature, and that feature. During a model
    switch this is the OLD model (the configured one's vectors are not complete yet). It is the
    query encoder (int8 with GALLERY_QUERY_QUANTIZE=int8), never the one workers embed with."""
    feature = active_feature()
    encoder = get_encoder(for_queries=True)
    if encoder.feature_name != feature.name:
        encoder = get_encoder(feature.model_name, for_queries=True)
        if encoder.feature_name != feature.name:
            raise FeatureMismatch(
                f"The active feature {feature.name} needs model {feature.model_name!r}, which "
                f"now loads as {encoder.feature_name}; re-embed (`manage.py embed --all`)."
            )
    return encoder, feature


def embeddable_artworks() -> QuerySet[Artwork]:
    return Artwork.objects.exclude(image="")


def missing_artworks(feature: Feature) -> QuerySet[Artwork]:
    """Artworks with an image and no current vector under `feature`."""
    current = Embedding.objects.filter(
        artwork=OuterRef("pk"), feature=feature, image_sha256=OuterRef("image_sha256")
    )
    return embeddable_artworks().filter(~Exists(current))


def activate_when_complete(*, feature: Feature) -> bool:
    """Make `feature` the active one if every artwork with an image has a vector under it.
    Returns whether `feature` is active afterwards."""
    if feature.is_active:
        return True
    if missing_artworks(feature).exists():
        return False
    with transaction.atomic():
        _lock_features()
        if missing_artworks(feature).exists():
            return False
        previous = list(Feature.objects.filter(is_active=True).values_list("name", flat=True))
        Feature.objects.filter(is_active=True).update(is_active=False)
        Feature.objects.filter(pk=feature.pk).update(is_active=True, activated_at=timezone.now())
    feature.refresh_from_db()
    logger.info("Embedding feature %s is complete and now active (was %s)", feature, previous)
    return True
