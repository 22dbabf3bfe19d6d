"""Which embedding space is in use, and switching models without mixing two models' vectors.

A Feature is one model + encoder version. Searches use only the active feature. Workers embed
under the feature of the encoder they have loaded (the configured model); when that is not the
active one, a switch is in progress: new vectors fill in the background while searches keep
using the old feature, and `activate_when_complete` switches once every artwork with an image has
a vector under the new feature.

Collections choose the model (gallery/extractors.py): the default checkpoint,
siglip-base-patch16-224, is whatever GALLERY_EMBEDDING_MODEL loads here (its Hugging Face id
by default, a local folder, or in development the offline test model), and the active-feature
machinery above is about it. A collection naming another model (an id or a folder) is embedded
with that model under that model's own feature, and searched through its feature URI.
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from gallery.extractors import DEFAULT_MODEL_NAMES, ExtractorConfigError, parse_extractor
from gallery.models import Artwork, Collection
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
        defaults={"model_name": encoder.model_name},
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


def model_location(model: str) -> str | None:
    """Where this deployment loads a collection's `model` from: None for the default
    checkpoint (GALLERY_EMBEDDING_MODEL, see above), else the model's own id or folder."""
    return None if model in DEFAULT_MODEL_NAMES else model


def collection_model(extractor: object) -> str | None:
    """The model location of a stored extractor configuration (None: the configured model;
    also for a configuration edited by hand into something invalid, which save() refuses)."""
    try:
        return model_location(parse_extractor(extractor).parameters.model)
    except ExtractorConfigError:
        return None


def encoder_for(location: str | None, *, for_queries: bool = False) -> Encoder:
    return get_encoder(location, for_queries=for_queries)


def group_by_model(ids: list[int]) -> dict[str | None, list[int]]:
    """`ids` grouped by the model location of their collection's extractor, in order."""
    models = {
        pk: collection_model(extractor)
        for pk, extractor in Collection.objects.values_list("pk", "feature_extractor")
    }
    found = dict(Artwork.objects.filter(pk__in=ids).order_by().values_list("pk", "collection_id"))
    groups: dict[str | None, list[int]] = {}
    for artwork_id in dict.fromkeys(ids):
        # An id no longer in the table goes with the configured model, which reports it skipped.
        location = models.get(found[artwork_id]) if artwork_id in found else None
        groups.setdefault(location, []).append(artwork_id)
    return groups


def configured_model_collections() -> QuerySet[Collection]:
    """The collections embedded with the configured model (the default checkpoint)."""
    return Collection.objects.filter(
        feature_extractor__parameters__model__in=sorted(DEFAULT_MODEL_NAMES)
    )


def embeddable_artworks() -> QuerySet[Artwork]:
    """Artworks with an image in a collection of the configured model: the ones the active
    feature must cover (another model's collections are embedded under that model's feature)."""
    return Artwork.objects.exclude(image="").filter(collection__in=configured_model_collections())


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
