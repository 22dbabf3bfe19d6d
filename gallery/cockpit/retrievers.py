"""The retriever's change page for curators: its configuration pretty-printed (still validated by
the retriever form, each message naming the wrong field), and a "try it" panel that runs the
saved retriever on a text, an uploaded image or an artwork id and shows the results' thumbnails,
each result's rank per search and the stage timings. Trying saves nothing: no retriever change,
no result cached.

The search app's Retriever admin is extended here, and registered in its place.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_POST

from search.admin_retrievers import RetrieverAdmin, RetrieverForm
from search.models import Retriever
from search.retriever import RetrievalError, RetrievalInputs, execute_retriever

TRY_RESULTS = 24
TRY_MAX_IMAGE_BYTES = 20 * 1024 * 1024


class PrettyJSONField(forms.JSONField):
    """Shown indented, two spaces a level, keys in their stored order."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class PrettyRetrieverForm(RetrieverForm):
    config = PrettyJSONField(
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "class": "vLargeTextField"}),
        help_text="The retriever's JSON. Saving checks it; each message names the wrong field "
        "(e.g. parameters.searches.0.top_k).",
    )


class TryForm(forms.Form):
    text = forms.CharField(required=False, max_length=1000)
    image = forms.ImageField(required=False)
    artwork_id = forms.IntegerField(required=False, min_value=1, label="Artwork id")

    def clean_image(self) -> Any:
        image = self.cleaned_data.get("image")
        if image is not None and image.size > TRY_MAX_IMAGE_BYTES:
            raise forms.ValidationError("The image is larger than 20 MB.")
        return image

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not (cleaned.get("text") or cleaned.get("image") or cleaned.get("artwork_id")):
            raise forms.ValidationError("Give a text, an image or an artwork id to try.")
        return cleaned

    def inputs(self) -> RetrievalInputs:
        image = self.cleaned_data.get("image")
        return RetrievalInputs(
            text=self.cleaned_data.get("text") or "",
            image=image.read() if image is not None else None,
            document_id=self.cleaned_data.get("artwork_id"),
        )


class CuratorRetrieverAdmin(RetrieverAdmin):
    form = PrettyRetrieverForm
    change_form_template = "admin/search/retriever/change_form_try.html"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:retriever_id>/try/",
                self.admin_site.admin_view(self.try_view),
                name="search_retriever_try",
            ),
            *super().get_urls(),
        ]

    def try_view(self, request: HttpRequest, retriever_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return require_POST(self._try)(request, retriever_id)

    def _try(self, request: HttpRequest, retriever_id: int) -> HttpResponse:
        retriever = get_object_or_404(Retriever, pk=retriever_id)
        form = TryForm(request.POST, request.FILES)
        context: dict[str, Any] = {"retriever": retriever, "try_form": form}
        if form.is_valid():
            try:
                context["result"] = execute_retriever(
                    name=retriever.name, inputs=form.inputs(), limit=TRY_RESULTS, use_cache=False
                )
            except RetrievalError as exc:
                context["error"] = str(exc)
        template = "admin/search/retriever/_try_results.html"
        if not request.htmx:  # type: ignore[attr-defined]
            template = "admin/search/retriever/try_page.html"
            context |= {**self.admin_site.each_context(request), "opts": self.model._meta}
        return TemplateResponse(request, template, context)


admin.site.unregister(Retriever)
admin.site.register(Retriever, CuratorRetrieverAdmin)
