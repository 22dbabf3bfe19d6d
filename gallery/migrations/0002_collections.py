# Collections: every artwork belongs to one, and a collection carries its feature extractor.
#
# Existing artworks move into the "default" collection, whose extractor is the case study's
# (image_extractor v1, siglip-base-patch16-224: the model this gallery has always embedded
# with, from GALLERY_EMBEDDING_MODEL). Their embeddings are rows keyed by (artwork, feature) and
# are not touched: nothing is re-embedded. The record's identity becomes (collection, source,
# external_id); with one collection it is the same as before.

import django.db.models.deletion
from django.db import migrations, models

import gallery.extractors
import gallery.models

DEFAULT_EXTRACTOR = {
    "feature_extractor_name": "image_extractor",
    "version": "v1",
    "input_mappings": {"image": "image"},
    "parameters": {"model": "siglip-base-patch16-224", "generate_thumbnail": True},
}


def move_artworks_into_the_default_collection(apps, schema_editor):
    Collection = apps.get_model("gallery", "Collection")
    default, _ = Collection.objects.get_or_create(
        name="default",
        defaults={
            "description": "Every artwork imported before collections existed.",
            "feature_extractor": DEFAULT_EXTRACTOR,
        },
    )
    # One statement, however many artworks: no row is read into Python.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "UPDATE gallery_artwork SET collection_id = %s WHERE collection_id IS NULL",
            [default.pk],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("gallery", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Collection",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.SlugField(max_length=100, unique=True)),
                ("description", models.TextField(blank=True)),
                (
                    "feature_extractor",
                    models.JSONField(
                        default=gallery.extractors.default_extractor,
                        help_text='The case study\'s shape: {"feature_extractor_name": "image_extractor", "version": "v1", "input_mappings": {"image": "image"}, "parameters": {"model": "siglip-base-patch16-224", "generate_thumbnail": true}}',
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddField(
            model_name="artwork",
            name="collection",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="artworks",
                to="gallery.collection",
            ),
        ),
        migrations.RunPython(move_artworks_into_the_default_collection, migrations.RunPython.noop),
        # NOT NULL in the database; the callable default lives in Python only (an AlterField
        # would call it here, through the current model rather than this migration's state).
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE gallery_artwork ALTER COLUMN collection_id SET NOT NULL",
                    "ALTER TABLE gallery_artwork ALTER COLUMN collection_id DROP NOT NULL",
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="artwork",
                    name="collection",
                    field=models.ForeignKey(
                        default=gallery.models.default_collection_id,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="artworks",
                        to="gallery.collection",
                    ),
                )
            ],
        ),
        migrations.RemoveConstraint(
            model_name="artwork",
            name="artwork_source_external_id_unique",
        ),
        migrations.AddConstraint(
            model_name="artwork",
            constraint=models.UniqueConstraint(
                fields=("collection", "source", "external_id"),
                name="artwork_collection_source_external_id_unique",
            ),
        ),
    ]
