from django.apps import AppConfig


class CockpitConfig(AppConfig):
    name = "gallery.cockpit"
    label = "cockpit"
    verbose_name = "Curators' cockpit"
