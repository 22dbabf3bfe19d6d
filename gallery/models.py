from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper


class Artwork(models.Model):
    """One museum record and its image. (source, external_id) is the record's stable identity."""

    class Source(models.TextChoices):
        NGA = "nga", "National Gallery of Art"
        AIC = "aic", "Art Institute of Chicago"
        LOCAL = "local", "Local collection"
        UPLOAD = "upload", "Curator upload"

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
                fields=["source", "external_id"], name="artwork_source_external_id_unique"
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

    @property
    def aspect_ratio(self) -> float:
        if self.width and self.height:
            return self.width / self.height
        return 1.0
