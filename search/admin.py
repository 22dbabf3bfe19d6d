"""Admin for embedding spaces and vectors, and the embedding-status pieces for ArtworkAdmin.

For the Artwork admin (gallery/admin.py), add:
    list_display += (embedding_status,)
    list_filter += (EmbeddingStatusFilter,)
    actions += (reembed,)
    get_queryset: with_embedding_status(queryset)   # optional: one query for the whole page
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils.html import format_html

from search import admin_retrievers  # noqa: F401  (registers the Retriever admin)
from search.models import Embedding, EmbeddingFailure, Feature
from search.queueing import forget_stale_vectors, queue_reembed


def _status_feature() -> Feature | None:
    """Status is shown for the active feature (the one searches use)."""
    return Feature.objects.filter(is_active=True).first()


def with_embedding_status(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """Annotate `has_embedding` and `embedding_failure` (the reason) under the active feature."""
    feature = _status_feature()
    current = Embedding.objects.filter(
        artwork=OuterRef("pk"), feature=feature, image_sha256=OuterRef("image_sha256")
    )
    failure = EmbeddingFailure.objects.filter(artwork=OuterRef("pk"), feature=feature)
    return queryset.annotate(
        has_embedding=Exists(current), embedding_failure=Subquery(failure.values("reason")[:1])
    )


class EmbeddingStatusFilter(admin.SimpleListFilter):
    title = "embedding"
    parameter_name = "embedding"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("embedded", "Embedded"), ("pending", "Pending"), ("failed", "Failed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        annotated = with_embedding_status(queryset)
        if value == "embedded":
            return annotated.filter(has_embedding=True)
        if value == "failed":
            return annotated.filter(has_embedding=False, embedding_failure__isnull=False)
        if value == "pending":
            return annotated.filter(has_embedding=False, embedding_failure__isnull=True).exclude(
                image=""
            )
        return queryset


@admin.display(description="Embedding")
def embedding_status(obj: Any) -> str:
    """ "embedded", "pending", "no image" or "failed: <reason>" under the active feature."""
    if hasattr(obj, "has_embedding"):
        embedded, reason = obj.has_embedding, obj.embedding_failure
    else:
        feature = _status_feature()
        embedded = Embedding.objects.filter(
            artwork=obj, feature=feature, image_sha256=obj.image_sha256
        ).exists()
        reason = (
            EmbeddingFailure.objects.filter(artwork=obj, feature=feature)
            .values_list("reason", flat=True)
            .first()
        )
    if embedded:
        return format_html('<span style="color:#1a7f37">{}</span>', "embedded")
    if reason:
        return format_html('<span style="color:#b42318" title="{0}">failed: {0}</span>', reason)
    if not obj.image:
        return "no image"
    return format_html('<span style="color:#9a6700">{}</span>', "pending")


@admin.action(description="Re-embed the selected artworks")
def reembed(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    ids = list(queryset.exclude(image="").values_list("pk", flat=True))
    EmbeddingFailure.objects.filter(artwork_id__in=ids).delete()
    forget_stale_vectors(ids=ids)
    tasks = queue_reembed(ids=ids, user=getattr(request, "user", None))  # a run on the jobs page
    if ids and not tasks:
        modeladmin.message_user(
            request,
            "The task broker is unreachable: nothing was queued. Run `manage.py embed --missing` "
            "when it is back.",
            messages.ERROR,
        )
        return
    modeladmin.message_user(
        request, f"Queued {len(ids)} artwork(s) for embedding in {tasks} task(s).", messages.SUCCESS
    )


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Feature)
class FeatureAdmin(ReadOnlyAdmin):
    list_display = ("name", "model_name", "is_active", "vectors", "activated_at")
    list_filter = ("is_active",)

    @admin.display(description="vectors")
    def vectors(self, obj: Feature) -> int:
        return obj.embeddings.count()


@admin.register(Embedding)
class EmbeddingAdmin(ReadOnlyAdmin):
    list_display = ("artwork", "feature", "image_sha256", "created_at")
    list_filter = ("feature",)
    list_select_related = ("artwork", "feature")
    raw_id_fields = ("artwork",)
    exclude = ("vector",)  # 768 numbers help no one; the row's existence and date do
    search_fields = ("=artwork__id", "artwork__title")


@admin.register(EmbeddingFailure)
class EmbeddingFailureAdmin(ReadOnlyAdmin):
    list_display = ("artwork", "feature", "reason", "attempts", "failed_at")
    list_filter = ("feature",)
    list_select_related = ("artwork", "feature")
