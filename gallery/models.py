from __future__ import annotations

from typing import Any

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Upper

from gallery.extractors import (
    ExtractorConfigError,
    FeatureExtractor,
    default_extractor,
    parse_extractor,
    with_version_for,
)

DEFAULT_COLLECTION = "default"


class Collection(models.Model):
    """A set of artworks embedded by one feature extractor (gallery/extractors.py).

    Every artwork belongs to exactly one collection; artworks without one go to the "default"
    collection. The extractor is validated on `clean()` (the admin form) and on `save()`; a
    changed model gets the next extractor version, so two models' vectors never share a feature.
    """

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    feature_extractor = models.JSONField(
        default=default_extractor,
        help_text='The case study\'s shape: {"feature_extractor_name": "image_extractor", '
        '"version": "v1", "input_mappings": {"image": "image"}, "parameters": {"model": '
        '"siglip-base-patch16-224", "generate_thumbnail": true}}',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            old = Collection.objects.filter(pk=self.pk).values_list("feature_extractor", flat=True)
            self.feature_extractor = with_version_for(old=old.first(), new=self.feature_extractor)
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        try:
            parse_extractor(self.feature_extractor)
        except ExtractorConfigError as exc:
            raise ValidationError({"feature_extractor": str(exc)}) from exc

    @property
    def extractor(self) -> FeatureExtractor:
        return parse_extractor(self.feature_extractor)


def default_collection_id() -> int:
    """The default collection's id (created when missing): artworks given no collection go there."""
    collection, _ = Collection.objects.get_or_create(name=DEFAULT_COLLECTION)
    return collection.pk


class Artwork(models.Model):
    """One museum record and its image. (collection, source, external_id) is the record's stable
    identity: `source` says where the record comes from (which importer, which museum), the
    collection which extractor embeds it and which searches see it."""

    class Source(models.TextChoices):
        NGA = "nga", "National Gallery of Art"
        AIC = "aic", "Art Institute of Chicago"
        LOCAL = "local", "Local collection"
        UPLOAD = "upload", "Curator upload"

    collection = models.ForeignKey(
        Collection, on_delete=models.PROTECT, related_name="artworks", default=default_collection_id
    )
    source = models.CharField(max_length=32, choices=Source.choices, default=Source.LOCAL)
    external_id = models.CharField(max_length=128)
    title = models.CharField(max_length=1000, blank=True)
    artist = models.CharField("artist / attribution", max_length=1000, blank=True)
    display_date = models.CharField(max_length=255, blank=True)
    begin_year = models.IntegerField(null=True, blank=True)
    end_year = models.IntegerField(null=True, blank=True)
    medium = models.TextField(blank=True)
    dimensions = models.TextField(blank=True)
    classification = models.CharField(max_length=128, blank=True)
    credit_line = models.TextField(blank=True)
    description = models.TextField(blank=True, help_text="May hold HTML; sanitised when shown.")
    alt_text = models.TextField(blank=True)
    source_url = models.URLField(max_length=1000, blank=True)
    license = models.CharField(max_length=255, blank=True)

    image = models.ImageField(upload_to="originals/", max_length=500, blank=True)
    thumbnail = models.ImageField(upload_to="thumbnails/", max_length=500, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    image_sha256 = models.CharField(max_length=64, blank=True, db_index=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "source", "external_id"],
                name="artwork_collection_source_external_id_unique",
            )
        ]
        indexes = [
            models.Index(fields=["classification"]),
            models.Index(fields=["artist"]),
            models.Index(fields=["begin_year", "end_year"]),
            models.Index(fields=["-updated_at"]),
            # The admin's search (icontains) compares UPPER(column) LIKE '%...%'.
            GinIndex(OpClass(Upper("title"), name="gin_trgm_ops"), name="artwork_title_upper_trgm"),
            GinIndex(
                OpClass(Upper("artist"), name="gin_trgm_ops"), name="artwork_artist_upper_trgm"
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.source}:{self.external_id}"
