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
from django.core.files.uploadedfile import UploadedFile
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from gallery.extractors import ExtractorConfigError, parse_extractor
from gallery.images import ImageError, load_image
from gallery.models import Artwork, Collection, default_collection_id
from gallery.services import (
    artwork_save_with_image,
    artwork_save_without_image,
    regenerate_thumbnails,
)
from search.admin import EmbeddingStatusFilter, embedding_status, reembed, with_embedding_status
from search.feature_uris import feature_uri_of


class CollectionAdminForm(forms.ModelForm):
    class Meta:
        model = Collection
        fields = ("name", "description", "feature_extractor")
        widgets = {
            "feature_extractor": forms.Textarea(
                attrs={"rows": 12, "cols": 100, "class": "vLargeTextField"}
            )
        }

    def clean_feature_extractor(self) -> Any:
        value = self.cleaned_data["feature_extractor"]
        if isinstance(value, dict) and set(value) == {"feature_extractor"}:
            value = value["feature_extractor"]  # pasted as the case study prints it
        try:
            parse_extractor(value)
        except ExtractorConfigError as exc:
            # One error per problem, each naming its field (feature_extractor.version, ...).
            raise ValidationError([str(part) for part in str(exc).split("; ")]) from exc
        return value


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    form = CollectionAdminForm
    list_display = ("name", "extractor", "feature_uri", "artworks", "updated_at")
    search_fields = ("name", "description")
    readonly_fields = ("feature_uri", "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Collection]:
        return super().get_queryset(request).annotate(artwork_count=models.Count("artworks"))

    @admin.display(description="artworks", ordering="artwork_count")
    def artworks(self, obj: Collection) -> int:
        return int(getattr(obj, "artwork_count", 0))

    @admin.display(description="extractor")
    def extractor(self, obj: Collection) -> str:
        try:
            parsed = parse_extractor(obj.feature_extractor)
        except ExtractorConfigError:
            return "invalid"
        return f"{parsed.feature_extractor_name}@{parsed.version} ({parsed.parameters.model})"

    @admin.display(description="feature URI")
    def feature_uri(self, obj: Collection) -> str:
        try:
            return feature_uri_of(parse_extractor(obj.feature_extractor))
        except ExtractorConfigError:
            return "—"

    def save_model(self, request: HttpRequest, obj: Collection, form: Any, change: bool) -> None:
        asked = (obj.feature_extractor or {}).get("version")
        super().save_model(request, obj, form, change)
        given = obj.feature_extractor.get("version")
        if asked != given:
            self.message_user(
                request,
                f"The model changed, so the extractor is now version {given} (was {asked}): its "
                f"vectors are a new feature, {feature_uri_of(obj.extractor)}, and are never "
                "mixed with the old model's. Retrievers naming the old URI must be updated.",
                messages.WARNING,
            )


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "collection" in self.fields:  # left empty: the default collection
            self.fields["collection"].required = False

    def clean_collection(self) -> Any:
        chosen = self.cleaned_data.get("collection")
        return chosen or Collection.objects.get(pk=default_collection_id())

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
        "collection",
        "source",
        embedding_status,
    )
    list_display_links = ("thumb", "title")
    list_select_related = ("collection",)
    list_filter = ("collection", "source", "classification", EmbeddingStatusFilter)
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
        (
            "Identity",
            {"fields": ("collection", "source", "external_id", "source_url", "license")},
        ),
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
            # The thumbnail is a link to the change form: its alt text names that link.
            '<img src="{}" alt="{}" loading="lazy" '
            'style="height:64px;width:auto;border-radius:2px">',
            obj.thumbnail.url,
            obj.title or "Untitled",
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
        """An uploaded image is stored like an imported one, not saved raw; a cleared image
        takes its files and the data derived from it along."""
        data: bytes | None = getattr(form, "image_data", None)
        if data is not None:
            if artwork_save_with_image(artwork=obj, image_data=data).image_changed:
                self.message_user(request, "The new image and its thumbnail were stored.")
        elif change and "image" in form.changed_data and not obj.image:
            artwork_save_without_image(artwork=obj)
        else:
            super().save_model(request, obj, form, change)

    @admin.action(description="Regenerate thumbnails now")
    def regenerate_thumbnails_action(
        self, request: HttpRequest, queryset: QuerySet[Artwork]
    ) -> None:
        done, errors = regenerate_thumbnails(artworks=queryset)
        self.message_user(request, f"Regenerated {done} thumbnail(s).", messages.SUCCESS)
        for error in errors:
            self.message_user(request, f"Skipped {error}", messages.ERROR)
