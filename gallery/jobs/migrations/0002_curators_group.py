"""The "Curators" group: everything a museum's registrar needs in the admin (artworks,
collections, imports and their jobs, embedding features, retrievers), nothing over people
(users, groups, permissions). Give a staff user this group instead of superuser status."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Curators"
ALL = ("add", "change", "delete", "view")
PERMISSIONS = {
    ("gallery", "artwork"): ALL,
    ("gallery", "collection"): ALL,
    ("jobs", "job"): ALL,
    ("jobs", "joberror"): ("view",),
    ("search", "feature"): ALL,
    ("search", "retriever"): ALL,
    ("search", "embedding"): ("view",),
    ("search", "embeddingfailure"): ("view",),
}


def create_curators(apps, schema_editor):
    # Permissions are normally created after the whole migrate run: create them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for (app_label, model), actions in PERMISSIONS.items():
        codenames = [f"{action}_{model}" for action in actions]
        found = Permission.objects.filter(
            content_type__app_label=app_label, codename__in=codenames
        )
        assert found.count() == len(codenames), (app_label, model)
        group.permissions.add(*found)


def remove_curators(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0001_jobs"),
        ("search", "0006_collection_version_on_collections"),
    ]

    operations = [migrations.RunPython(create_curators, remove_curators)]
