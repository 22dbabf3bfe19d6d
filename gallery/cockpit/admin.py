"""The jobs page in the admin: the list of imports and embedding runs with live counts (htmx
polling), the import forms, cancel, retry and the per-record errors as CSV.

Every view goes through the admin site (staff login, CSRF) and checks the model permission it
needs: starting an import needs `jobs.add_job`, cancel and retry `jobs.change_job`, the list and
the errors `jobs.view_job`; queueing a feature's missing or failed artworks `search.change_feature`
and `jobs.add_job`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.text import slugify
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from gallery.cockpit import features, retrievers  # noqa: F401  (register their admins)
from gallery.cockpit.embedding_runs import embedding_runs, queue_failed, queue_missing
from gallery.cockpit.forms import (
    TOO_LARGE,
    CappedUploadHandler,
    ImportForm,
    NgaImportForm,
    ZipImportForm,
    too_large_message,
)
from gallery.cockpit.tasks import queue_job
from gallery.jobs.models import Job
from gallery.jobs.services import (
    job_cancel,
    job_create,
    job_delete_files,
    job_error_rows,
    job_retry,
)
from search.models import Feature

JOBS_PER_PAGE = 50
POLL_SECONDS = 2


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "state", "collection", "done", "failed", "created_at"]
    readonly_fields = [
        "kind",
        "state",
        "collection",
        "parameters",
        "total",
        "done",
        "failed",
        "created",
        "updated",
        "unchanged",
        "message",
        "cancel_requested",
        "retry_of",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    exclude = ["workdir"]

    def get_urls(self) -> list[URLPattern]:
        def wrap(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
            return self.admin_site.admin_view(view)

        return [
            path("table/", wrap(self.table_view), name="jobs_job_table"),
            path("import-zip/", wrap(self.zip_import_view), name="jobs_job_import_zip"),
            path("import-nga/", wrap(self.nga_import_view), name="jobs_job_import_nga"),
            path("<int:job_id>/cancel/", wrap(self.cancel_view), name="jobs_job_cancel"),
            path("<int:job_id>/retry/", wrap(self.retry_view), name="jobs_job_retry"),
            path("<int:job_id>/errors.csv", wrap(self.errors_view), name="jobs_job_errors"),
            path(
                "embeddings/<int:feature_id>/<str:which>/",
                wrap(self.queue_embeddings_view),
                name="jobs_job_queue_embeddings",
            ),
            *super().get_urls(),
        ]

    # The generic add form would make a job without input files: the import forms do it.
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:jobs_job_import_zip"))

    def delete_model(self, request: HttpRequest, obj: Job) -> None:
        super().delete_model(request, obj)
        job_delete_files(job=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        jobs = list(queryset)
        super().delete_queryset(request, queryset)
        for job in jobs:
            job_delete_files(job=job)

    # The list of jobs: this page, its table refreshed by htmx while a job on it is unfinished.
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            **self._table_context(request),
            "title": "Jobs",
            "opts": self.model._meta,
            "can_import": self.has_add_permission(request),
            "can_add_feature": request.user.has_perm("search.add_feature")
            and self.has_add_permission(request),
        }
        return TemplateResponse(request, "admin/jobs/job/jobs.html", context)

    @staticmethod
    def _page(request: HttpRequest) -> int:
        value = request.GET.get("page", "1")
        return int(value) if value.isdigit() else 1

    def _table_context(self, request: HttpRequest) -> dict[str, Any]:
        jobs = Job.objects.select_related("collection", "created_by")
        page = Paginator(jobs, JOBS_PER_PAGE).get_page(self._page(request))
        runs = embedding_runs()
        return {
            "page_obj": page,
            "jobs": page.object_list,
            "embedding_runs": runs,
            "polling": any(not job.is_final for job in page.object_list)
            or any(run.busy for run in runs),
            "poll_seconds": POLL_SECONDS,
            "can_change": self.has_change_permission(request),
            "can_queue_embeddings": self._can_queue_embeddings(request),
        }

    @staticmethod
    def _require(allowed: bool) -> None:
        if not allowed:
            raise PermissionDenied

    def table_view(self, request: HttpRequest) -> HttpResponse:
        self._require(self.has_view_permission(request))
        return require_safe(self._render_table)(request)

    def _render_table(self, request: HttpRequest) -> HttpResponse:
        return TemplateResponse(
            request, "admin/jobs/job/_jobs_table.html", self._table_context(request)
        )

    # Imports. The upload handlers must be set before the body is read, so these views are
    # exempt from the admin's CSRF wrapper and protect themselves after setting them.
    @csrf_exempt
    def zip_import_view(self, request: HttpRequest) -> HttpResponse:
        return self._import(request, ZipImportForm, Job.Kind.ZIP_IMPORT, "Import a ZIP of images")

    @csrf_exempt
    def nga_import_view(self, request: HttpRequest) -> HttpResponse:
        return self._import(request, NgaImportForm, Job.Kind.NGA_IMPORT, "Import NGA open data")

    def _import(
        self, request: HttpRequest, form_class: type[ImportForm], kind: Job.Kind, title: str
    ) -> HttpResponse:
        self._require(self.has_add_permission(request))
        request.upload_handlers = [
            CappedUploadHandler(request),
            TemporaryFileUploadHandler(request),  # every file on disk, never in memory
        ]

        @require_http_methods(["GET", "HEAD", "POST"])
        @csrf_protect
        def view(request: HttpRequest) -> HttpResponse:
            form, refused = form_class(), ""
            if request.method == "POST":
                form = form_class(request.POST, request.FILES)
                if getattr(request, TOO_LARGE, False):
                    form, refused = form_class(), too_large_message()
                elif form.is_valid():
                    files = {
                        name: upload
                        for name in ("archive", "metadata", "objects", "images")
                        if (upload := form.cleaned_data.get(name))
                    }
                    with transaction.atomic():
                        job = job_create(
                            kind=kind,
                            collection=form.cleaned_data["collection"],
                            parameters=form.parameters(),
                            files=files,
                            user=request.user,
                        )
                        queue_job(job=job)
                    messages.success(request, f"{job} is queued; it runs in the background.")
                    return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))
            context = {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "form": form,
                "refused": refused,
            }
            return TemplateResponse(request, "admin/jobs/job/import.html", context)

        return view(request)

    def cancel_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        self._require(self.has_change_permission(request))
        return require_POST(self._cancel)(request, job_id)

    def _cancel(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = get_object_or_404(Job, pk=job_id)
        if job_cancel(job=job):
            messages.success(request, f"{job}: cancel requested.")
        else:
            messages.warning(request, f"{job} had already finished.")
        return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))

    def retry_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        self._require(self.has_change_permission(request) and self.has_add_permission(request))
        return require_POST(self._retry)(request, job_id)

    def _retry(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = get_object_or_404(Job, pk=job_id)
        try:
            with transaction.atomic():
                retry = job_retry(job=job, user=request.user)
                queue_job(job=retry)
        except ValueError as exc:
            messages.warning(request, f"{job}: nothing to retry ({exc}).")
        else:
            messages.success(request, f"{retry} is queued: it retries {job}.")
        return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))

    def _can_queue_embeddings(self, request: HttpRequest) -> bool:
        return request.user.has_perm("search.change_feature") and self.has_add_permission(request)

    def queue_embeddings_view(
        self, request: HttpRequest, feature_id: int, which: str
    ) -> HttpResponse:
        self._require(self._can_queue_embeddings(request))
        return require_POST(self._queue_embeddings)(request, feature_id, which)

    def _queue_embeddings(self, request: HttpRequest, feature_id: int, which: str) -> HttpResponse:
        feature = get_object_or_404(Feature, pk=feature_id)
        if which not in ("missing", "failed"):
            raise Http404("Queue 'missing' or 'failed'.")
        job = (queue_missing if which == "missing" else queue_failed)(
            feature=feature, user=request.user
        )
        messages.success(request, f"{job} is queued: the {which} artworks of {feature}.")
        return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))

    def errors_view(self, request: HttpRequest, job_id: int) -> HttpResponseBase:
        self._require(self.has_view_permission(request))
        return require_safe(self._errors)(request, job_id)

    def _errors(self, request: HttpRequest, job_id: int) -> HttpResponseBase:
        job = get_object_or_404(Job, pk=job_id)

        class Echo:
            def write(self, value: str) -> str:
                return value

        writer = csv.writer(Echo())

        def rows() -> Iterator[str]:
            yield writer.writerow(["record_id", "reason"])
            for row in job_error_rows(job=job):
                yield writer.writerow(row)

        name = slugify(f"job-{job.pk}-{job.collection or job.get_kind_display()}-errors")
        return StreamingHttpResponse(
            rows(),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
