"""The embedding features ("models") in the admin, for curators: per feature its model, its
current vectors, the artworks it still lacks before it can be the active one, its failures, and
whether searches use it; an action that activates a feature once it is complete; and "New
feature from a checkpoint" (the add page): a checkpoint checked offline, a name, "activate when
complete", which makes the feature and starts the embedding run that fills it (a job).

Adding needs `search.add_feature` and `jobs.add_job`; the page goes through the admin site
(staff login, CSRF). The search app's Feature admin is extended here, and registered in its
place.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from gallery.cockpit.embedding_runs import build_feature
from gallery.cockpit.forms import NewFeatureForm
from search.admin import FeatureAdmin
from search.features import FeatureCheckError, activate_when_complete, missing_artworks
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("search.add_feature") and request.user.has_perm("jobs.add_job")

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """New feature from a checkpoint (the admin's add view is already wrapped by the admin
        site: staff login and CSRF)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        return require_http_methods(["GET", "HEAD", "POST"])(self._new_feature)(request)

    def _new_feature(self, request: HttpRequest) -> HttpResponse:
        form = NewFeatureForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                feature, job = build_feature(
                    checkpoint=form.cleaned_data["checkpoint"],
                    name=form.cleaned_data["name"],
                    activate=form.cleaned_data["activate"],
                    user=request.user,
                )
            except FeatureCheckError as exc:
                form.add_error(exc.field, str(exc))
            else:
                then = " and activated when complete" if form.cleaned_data["activate"] else ""
                messages.success(
                    request, f"{feature.name} is made; {job} fills it in the background{then}."
                )
                return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "New feature from a checkpoint",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/search/feature/new_feature.html", context)

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
