"""The embedding features ("models") in the admin, for curators: per feature its model, its
current vectors, the artworks it still lacks before it can be the active one, its failures, and
whether searches use it; and an action that activates a feature once it is complete (the same
`activate_when_complete` the workers call after each batch).

The search app's Feature admin is extended here, and registered in its place.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from search.admin import FeatureAdmin
from search.features import activate_when_complete, missing_artworks
from search.models import Embedding, EmbeddingFailure, Feature


class CuratorFeatureAdmin(FeatureAdmin):
    list_display = [  # type: ignore[assignment]  # the base declares a tuple of another length
        "name",
        "model_name",
        "is_active",
        "current_vectors",
        "missing",
        "failed",
        "activated_at",
    ]
    actions = ["activate_if_complete"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Feature]:
        # Counted per feature in subqueries: a join of vectors and failures would multiply rows.
        current = Embedding.objects.filter(feature=OuterRef("pk")).filter(
            image_sha256=F("artwork__image_sha256")
        )
        failures = EmbeddingFailure.objects.filter(feature=OuterRef("pk"))
        return (
            super()
            .get_queryset(request)
            .annotate(current_count=_count(current), failed_count=_count(failures))
        )

    @admin.display(description="vectors (current)", ordering="current_count")
    def current_vectors(self, obj: Any) -> int:
        return int(obj.current_count or 0)

    @admin.display(description="missing before it can be active")
    def missing(self, obj: Feature) -> int:
        return missing_artworks(obj).count()

    @admin.display(description="failed", ordering="failed_count")
    def failed(self, obj: Any) -> int:
        return int(obj.failed_count or 0)

    def has_activate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("search.change_feature")

    @admin.action(
        description="Activate the selected feature once complete", permissions=["activate"]
    )
    def activate_if_complete(self, request: HttpRequest, queryset: QuerySet[Feature]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select one feature to activate.", messages.WARNING)
            return
        feature = queryset.get()
        if activate_when_complete(feature=feature):
            self.message_user(request, f"{feature} is the active feature: searches use it.")
        else:
            missing = missing_artworks(feature).count()
            self.message_user(
                request,
                f"{feature} is not complete: {missing} artwork(s) still lack a vector under it. "
                "The workers activate it by themselves once the last one is embedded.",
                messages.WARNING,
            )


def _count(rows: QuerySet[Any]) -> Subquery:
    counted = rows.order_by().values("feature").annotate(n=Count("pk")).values("n")
    return Subquery(counted, output_field=IntegerField())


admin.site.unregister(Feature)
admin.site.register(Feature, CuratorFeatureAdmin)
