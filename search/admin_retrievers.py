"""Admin for named retrievers. Imported from search/admin.py (which registers it)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from search.config import ConfigError, parse_config
from search.models import Retriever
from search.models.retrievers import check_config


class RetrieverForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Retriever
        fields = ("name", "description", "config")
        widgets = {
            "config": forms.Textarea(attrs={"rows": 30, "cols": 100, "class": "vLargeTextField"})
        }

    def clean_config(self) -> Any:
        config = self.cleaned_data["config"]
        try:
            check_config(config)
        except ConfigError as exc:
            # One error per problem, each naming where it is (e.g. parameters.searches.0.top_k).
            raise forms.ValidationError([str(part) for part in str(exc).split("; ")]) from exc
        return config


@admin.register(Retriever)
class RetrieverAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = RetrieverForm
    list_display = ("name", "searches", "description", "updated_at")
    search_fields = ("name", "description")
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="Searches")
    def searches(self, obj: Retriever) -> str:
        try:
            parsed = parse_config(obj.config)
        except ConfigError:
            return "invalid"
        return (
            ", ".join(
                f"{s.label} ({'negative, ' if s.polarity == 'negative' else ''}top {s.top_k})"
                for s in parsed.parameters.searches
            )
            + f" → {parsed.parameters.fusion.strategy} k={parsed.parameters.fusion.k:g}"
        )
