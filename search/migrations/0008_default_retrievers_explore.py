"""The default and hybrid retrievers gain the exploration searches: more reference artworks, a
region's crop, and negative examples (artworks and an upload). The searches are written out here,
as they were when this migration was made, so later edits of search/config.py do not rewrite
history. A retriever an operator has edited keeps its searches, and gains the new ones that fit
(at most eight searches, no name used twice)."""

from django.db import migrations

COMMON = {"feature": "active", "top_k": 250, "on_empty": "skip"}
NEW_SEARCHES = [
    {"name": "reference", **COMMON,
     "query": {"input_mode": "document", "document_ref": "{{INPUT.references}}"}},
    {"name": "region", **COMMON,
     "query": {"input_mode": "content", "value": "{{INPUT.region}}"}},
    {"name": "unlike", **COMMON, "polarity": "negative",
     "query": {"input_mode": "document", "document_ref": "{{INPUT.negatives}}"}},
    {"name": "unlike-image", **COMMON, "polarity": "negative",
     "query": {"input_mode": "content", "value": "{{INPUT.negative_image}}"}},
]  # fmt: skip
NEW_NAMES = {search["name"] for search in NEW_SEARCHES}
MAX_SEARCHES = 8


def _label(search):
    return search.get("name") or search.get("query", {}).get("input_mode")


def add_searches(apps, schema_editor):
    Retriever = apps.get_model("search", "Retriever")
    for retriever in Retriever.objects.filter(name__in=["default", "hybrid"]):
        config = retriever.config
        searches = list(config.get("parameters", {}).get("searches", []))
        taken = {_label(search) for search in searches}
        for search in NEW_SEARCHES:
            if search["name"] not in taken and len(searches) < MAX_SEARCHES:
                searches.append(search)
        config["parameters"]["searches"] = searches
        retriever.config = config
        retriever.save(update_fields=["config"])


def remove_searches(apps, schema_editor):
    Retriever = apps.get_model("search", "Retriever")
    for retriever in Retriever.objects.filter(name__in=["default", "hybrid"]):
        config = retriever.config
        config["parameters"]["searches"] = [
            search for search in config["parameters"]["searches"] if search not in NEW_SEARCHES
        ]
        retriever.save(update_fields=["config"])


class Migration(migrations.Migration):
    dependencies = [("search", "0007_remove_feature_dimensions")]

    operations = [migrations.RunPython(add_searches, remove_searches)]
