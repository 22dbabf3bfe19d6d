from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from gallery.models import Artwork
from gallery.services import regenerate_thumbnails


@admin.register(Artwork)
class ArtworkAdmin(admin.ModelAdmin):
    list_display = ("thumb", "title", "artist", "display_date", "classification", "source")
    list_display_links = ("thumb", "title")
    list_filter = ("source", "classification")
    search_fields = ("title", "artist", "=external_id")
    readonly_fields = ("preview", "width", "height", "image_sha256", "created_at", "updated_at")
    list_per_page = 50
    actions = ("regenerate_thumbnails_action",)
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

    @admin.action(description="Regenerate thumbnails now")
    def regenerate_thumbnails_action(self, request: HttpRequest, queryset: QuerySet[Artwork]) -> None:
        done, errors = regenerate_thumbnails(artworks=queryset)
        self.message_user(request, f"Regenerated {done} thumbnail(s).", messages.SUCCESS)
        for error in errors:
            self.message_user(request, f"Skipped {error}", messages.ERROR)
