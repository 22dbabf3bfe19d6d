"""The curators' admin for the collection.

Extending it (the embedding status, re-embed): add to `list_filter`, `list_display` and `actions`
on `ArtworkAdmin` (or a subclass registered in its place); every action calls a service function
and reports what it did, so no action is a no-op.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from gallery.images import ImageError, load_image
from gallery.models import Artwork
from gallery.services import artwork_upsert, regenerate_thumbnails
from search.admin import EmbeddingStatusFilter, embedding_status, reembed, with_embedding_status


class SafeImageField(forms.ImageField):
    """Django's ImageField, but an image our decoder refuses gets our message (how many
    megapixels, truncated, animated...) instead of Django's generic "Upload a valid image"."""

    def to_python(self, data: Any) -> Any:
        if isinstance(data, UploadedFile):
            content = data.read()
            data.seek(0)
            try:
                load_image(content)
            except ImageError as exc:
                raise ValidationError(str(exc), code="bad_image") from exc
        return super().to_python(data)


class ArtworkAdminForm(forms.ModelForm):
    """Checks an uploaded image with the same safe decoder as the importers, so that a bomb,
    a truncated file or a non-image is refused on the form, naming the problem."""

    class Meta:
        model = Artwork
        fields = ("image",)  # the admin's fieldsets choose the form's fields
        field_classes = {"image": SafeImageField}

    def clean_image(self) -> Any:
        value = self.cleaned_data.get("image")
        if isinstance(value, UploadedFile):  # already checked by SafeImageField
            self.image_data: bytes | None = value.read()
            value.seek(0)
        return value


@admin.register(Artwork)
class ArtworkAdmin(admin.ModelAdmin):
    form = ArtworkAdminForm
    list_display: tuple[Any, ...] = (
        "thumb",
        "title",
        "artist",
        "display_date",
        "classification",
        "source",
        embedding_status,
    )
    list_display_links = ("thumb", "title")
    list_filter = ("source", "classification", EmbeddingStatusFilter)
    search_fields = ("title", "artist", "=external_id")
    readonly_fields = (
        "preview",
        "thumbnail",
        "width",
        "height",
        "image_sha256",
        "created_at",
        "updated_at",
    )
    list_per_page = 50
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions: tuple[Any, ...] = ("regenerate_thumbnails_action", reembed)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Artwork]:
        # The embedding status column then costs no query per row.
        return with_embedding_status(super().get_queryset(request))

    fieldsets = (
        (None, {"fields": ("preview", "title", "artist", "display_date", "classification")}),
        ("Identity", {"fields": ("source", "external_id", "source_url", "license")}),
        (
            "Details",
            {
                "fields": (
                    ("begin_year", "end_year"),
                    "medium",
                    "dimensions",
                    "credit_line",
                    "description",
                    "alt_text",
                )
            },
        ),
        ("Image", {"fields": ("image", "thumbnail", ("width", "height"), "image_sha256")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="")
    def thumb(self, obj: Artwork) -> str:
        if not obj.thumbnail:
            return "—"
        return format_html(
            '<img src="{}" alt="" loading="lazy" style="height:64px;width:auto;border-radius:2px">',
            obj.thumbnail.url,
        )

    @admin.display(description="Image")
    def preview(self, obj: Artwork) -> str:
        if not obj.image:
            return "No image"
        return format_html(
            '<a href="{}"><img src="{}" alt="{}" style="max-height:420px;max-width:100%"></a>',
            obj.image.url,
            obj.thumbnail.url if obj.thumbnail else obj.image.url,
            obj.alt_text or obj.title,
        )

    def save_model(self, request: HttpRequest, obj: Artwork, form: Any, change: bool) -> None:
        """An uploaded image goes through `artwork_upsert` like an imported one (upright
        original, thumbnail, size, hash, re-embedding signal) instead of being saved raw."""
        data: bytes | None = getattr(form, "image_data", None)
        if data is not None:
            previous = Artwork.objects.filter(pk=obj.pk).first() if obj.pk else None
            obj.image = previous.image if previous else None  # type: ignore[assignment]
        elif change and "image" in form.changed_data and not obj.image:
            # The curator cleared the image: its file and derived data go with it.
            previous = Artwork.objects.filter(pk=obj.pk).values_list("image", flat=True).first()
            stale = [name for name in (previous, obj.thumbnail.name) if name]
            obj.thumbnail = None  # type: ignore[assignment]
            obj.width = obj.height = None
            obj.image_sha256 = ""
            transaction.on_commit(lambda: _delete_files(stale))
        super().save_model(request, obj, form, change)
        if data is not None:
            result = artwork_upsert(
                source=obj.source, external_id=obj.external_id, metadata={}, image_data=data
            )
            obj.refresh_from_db()
            if result.image_changed:
                self.message_user(request, "The new image and its thumbnail were stored.")

    @admin.action(description="Regenerate thumbnails now")
    def regenerate_thumbnails_action(
        self, request: HttpRequest, queryset: QuerySet[Artwork]
    ) -> None:
        done, errors = regenerate_thumbnails(artworks=queryset)
        self.message_user(request, f"Regenerated {done} thumbnail(s).", messages.SUCCESS)
        for error in errors:
            self.message_user(request, f"Skipped {error}", messages.ERROR)


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)
