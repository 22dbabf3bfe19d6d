from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "gallery"
    verbose_name = "Collection"

    def ready(self) -> None:
        from gallery.images import apply_pixel_limit

        apply_pixel_limit()
