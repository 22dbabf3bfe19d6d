"""Which embedding space is in use, and switching models without mixing two models' vectors.

A Feature is one checkpoint + encoder version, and its `model_name` (a Hugging Face id or a
local folder) is the checkpoint its vectors come from: a worker embedding a batch for a feature
loads that checkpoint, and web processes encode queries with the active feature's. Searches use
only the active feature. A curator builds another feature from another checkpoint (the admin's
"New feature from a checkpoint", or `manage.py embed --checkpoint`): an embedding run fills it
in the background while searches keep using the active one, and switches to it once complete
only when that was asked for (`finish_run_if_complete`). GALLERY_EMBEDDING_MODEL is only the
checkpoint of the first feature, made when none is active yet.

Collections choose the model (gallery/extractors.py): the default checkpoint,
siglip-base-patch16-224, stands for the active feature's checkpoint (the first time,
GALLERY_EMBEDDING_MODEL: its Hugging Face id by default, a local folder, or in development the
offline test model), and the active-feature machinery above is about it. A collection naming
another model (an id or a folder) is embedded with that model under that model's own feature,
and searched through its feature URI.
"""

from __future__ import annotations

import logging
import re

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from gallery.extractors import DEFAULT_MODEL_NAMES, ExtractorConfigError, parse_extractor
from gallery.jobs.models import Job
from gallery.jobs.services import unfinished_embedding_runs
from gallery.models import Artwork, Collection
from search.checkpoint import EncoderLoadError, check_checkpoint, short_name
from search.encoder import ENCODER_VERSION, Encoder, get_encoder
from search.models import Embedding, EmbeddingFailure, Feature
from search.models.embeddings import DIMENSIONS

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


def first_feature() -> Feature:
    """The feature of GALLERY_EMBEDDING_MODEL (the offline test model where the fallback is on
    and that model cannot load): the first one, made active when none is."""
    return feature_for(get_encoder())


def target_feature() -> Feature:
    """The feature new vectors of the default checkpoint's collections go under: the active one,
    else the first one."""
    return Feature.objects.filter(is_active=True).first() or first_feature()


def features_being_filled() -> list[Feature]:
    """Features an unfinished embedding run is filling: artworks imported meanwhile are
    embedded for them too, so that they are complete when their run ends."""
    ids = {
        parameters.get("feature_id")
        for parameters in unfinished_embedding_runs().values_list("parameters", flat=True)
    }
    return list(Feature.objects.filter(pk__in=[i for i in ids if i], is_active=False))


def active_feature() -> Feature:
    """The feature searches use. With none yet, the first feature becomes active."""
    feature = Feature.objects.filter(is_active=True).first()
    if feature is not None:
        return feature
    target = first_feature()
    with transaction.atomic():
        _lock_features()
        current = Feature.objects.filter(is_active=True).first()
        if current is not None:
            return current
        target.is_active, target.activated_at = True, timezone.now()
        target.save(update_fields=["is_active", "activated_at"])
    logger.info("Activated embedding feature %s (the first one)", target)
    return target


def encoder_for_feature(feature: Feature, *, for_queries: bool = False) -> Encoder:
    """The encoder of the feature's checkpoint (loaded once per process; EncoderLoadError when
    this machine cannot load it). FeatureMismatch when the checkpoint now computes another
    feature's vectors (the encoder's preprocessing version changed since it was named)."""
    try:
        encoder = get_encoder(feature.model_name, for_queries=for_queries)
    except EncoderLoadError:
        # A feature whose recorded location does not load here but whose vectors the
        # configured model computes (it was recorded under another name of that model).
        try:
            configured = get_encoder(for_queries=for_queries)
        except EncoderLoadError:
            configured = None
        if configured is None or configured.feature_name != feature.name:
            raise
        return configured
    if feature.name != encoder.feature_name and _named_after_its_checkpoint(feature):
        raise FeatureMismatch(
            f"The feature {feature.name} needs model {feature.model_name!r}, which now loads as "
            f"{encoder.feature_name}; build that feature (`manage.py embed --checkpoint ...`)."
        )
    return encoder


def _named_after_its_checkpoint(feature: Feature) -> bool:
    """Whether the feature has the name an encoder gives it (a curator may choose another)."""
    prefix = re.escape(short_name(feature.model_name))
    return re.fullmatch(rf"{prefix}@v[0-9]+", feature.name) is not None


def query_encoder() -> tuple[Encoder, Feature]:
    """The encoder of the active feature's checkpoint, and that feature: while another feature
    is being filled, searches keep the old one. Read on every search, so a switch is followed
    by the next query, which loads the new checkpoint (once per process). It is the query
    encoder (ONNX Runtime or int8 where configured), never the one workers embed with."""
    feature = active_feature()
    return encoder_for_feature(feature, for_queries=True), feature


def default_feature_name(checkpoint: str) -> str:
    return f"{short_name(checkpoint)}@{ENCODER_VERSION}"


class FeatureCheckError(ValueError):
    """A new feature cannot be made: `field` ("checkpoint" or "name") says which input is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_new_feature(*, checkpoint: str, name: str = "") -> str:
    """The name of a new feature from `checkpoint` (`name`, else the checkpoint's own), checked
    offline: the checkpoint must load here with the encoder's loader, as a SigLIP model making
    vectors of the stored size, and the name must be free. FeatureCheckError otherwise."""
    checkpoint = checkpoint.strip()
    try:
        check_checkpoint(checkpoint, dimensions=DIMENSIONS)
    except EncoderLoadError as exc:
        raise FeatureCheckError("checkpoint", str(exc)) from exc
    name = name.strip() or default_feature_name(checkpoint)
    existing = Feature.objects.filter(name=name).first()
    if existing is not None:
        hint = (
            " (this checkpoint's: activate it, or queue its missing artworks on the jobs page)"
            if existing.model_name == checkpoint
            else ""
        )
        raise FeatureCheckError("name", f"A feature named {name} exists already{hint}.")
    return name


def feature_create(*, checkpoint: str, name: str = "") -> Feature:
    """A new, inactive feature of `checkpoint` (checked as `check_new_feature` says)."""
    checkpoint = checkpoint.strip()
    name = check_new_feature(checkpoint=checkpoint, name=name)
    return Feature.objects.create(name=name, model_name=checkpoint)


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
    """The encoder of a collection's model location (None: the active feature's checkpoint)."""
    if location is None:
        return encoder_for_feature(target_feature(), for_queries=for_queries)
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


def activate_first_feature() -> bool:
    """With no active feature yet, make the first feature active once complete (the collection's
    first embedding). Never switches away from an active feature."""
    if Feature.objects.filter(is_active=True).exists():
        return False
    return activate_when_complete(feature=first_feature())


def finish_run_if_complete(*, job_id: int) -> list[int]:
    """After a batch of an embedding run was counted: when every batch is, the run is done and,
    if it was asked to, its feature becomes the active one. Artworks the feature still lacks
    (imported while the run went on, and not failed) are added to the run first. Returns the
    batch numbers added, for the caller to queue once this commits."""
    from gallery.jobs.services import embedding_run_extend
    from search.queueing import task_batch_size

    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != Job.State.RUNNING or job.total is None:
            return []
        if job.done + job.failed < job.total:
            return []
        feature_id = job.parameters.get("feature_id")
        feature = Feature.objects.filter(pk=feature_id).first() if feature_id else None
        activate = bool(job.parameters.get("activate")) and feature is not None
        if activate and feature is not None and not feature.is_active:
            failed = EmbeddingFailure.objects.filter(feature=feature).values("artwork")
            late = list(
                missing_artworks(feature)
                .exclude(pk__in=failed)
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            if late:
                batches = embedding_run_extend(job=job, ids=late, batch_size=task_batch_size())
                return [batch.number for batch in batches]
        message = f"{job.done} artwork(s) embedded, {job.failed} failed."
        if activate and feature is not None:
            if activate_when_complete(feature=feature):
                message += f" {feature.name} is now the active feature: searches use it."
            else:
                missing = missing_artworks(feature).count()
                message += (
                    f" {feature.name} was not activated: {missing} artwork(s) still lack a "
                    "vector under it (retry the failed ones)."
                )
        Job.objects.filter(pk=job.pk).update(
            state=Job.State.DONE, message=message, finished_at=timezone.now()
        )
    logger.info("Embedding run %s done: %s", job_id, message)
    return []
