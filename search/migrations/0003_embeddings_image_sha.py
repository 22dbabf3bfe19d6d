# The image version an embedding was computed from (see Embedding.image_sha256).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("search", "0002_retrievers_fts_cache"),
    ]

    operations = [
        migrations.AddField(
            model_name="embedding",
            name="image_sha256",
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
