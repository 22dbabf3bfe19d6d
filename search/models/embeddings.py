from __future__ import annotations

from django.db import models
from pgvector.django import HalfVectorField, HnswIndex

DIMENSIONS = 768


class Feature(models.Model):
    """One embedding space: a model checkpoint and a version ("siglip-base@v1").

    Vectors of two features are never compared. Exactly one feature is active: searches use it;
    a new feature is filled in the background and activated when complete.
    """

    name = models.CharField(max_length=200, unique=True)
    model_name = models.CharField(max_length=500, help_text="Hugging Face id or local folder")
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(is_active=True),
                name="feature_one_active",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Embedding(models.Model):
    artwork = models.ForeignKey(
        "gallery.Artwork", on_delete=models.CASCADE, related_name="embeddings"
    )
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="embeddings")
    # Half precision (pgvector >= 0.7): half the table and index, and a row fits one heap page
    # instead of a TOAST chain, so the kNN reads less at the same recall (the README's
    # performance section has the figures). Query vectors are sent as halfvec too.
    vector = HalfVectorField(dimensions=DIMENSIONS)
    # The artwork's image_sha256 when this vector was computed: a vector whose image has since
    # changed is stale (the signal deletes it; the worker never inserts one for an old image).
    image_sha256 = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["artwork", "feature"], name="embedding_artwork_feature_unique"
            )
        ]
        indexes = [
            HnswIndex(
                name="embedding_vector_hnsw",
                fields=["vector"],
                m=16,
                ef_construction=64,
                opclasses=["halfvec_cosine_ops"],
            )
        ]

    def __str__(self) -> str:
        return f"{self.feature} · artwork {self.artwork_id}"


class EmbeddingFailure(models.Model):
    """The last reason an artwork could not be embedded under a feature (cleared on success)."""

    artwork = models.ForeignKey(
        "gallery.Artwork", on_delete=models.CASCADE, related_name="embedding_failures"
    )
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="failures")
    reason = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    failed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["artwork", "feature"], name="embedding_failure_artwork_feature_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.feature} · artwork {self.artwork_id}: {self.reason}"
