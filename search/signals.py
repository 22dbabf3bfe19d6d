"""The search app's signal receivers: they only connect; the work is in search.queueing."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from gallery.services import artwork_images_changed
from search import queueing


@receiver(artwork_images_changed, dispatch_uid="search.queue_embeddings")
def on_artwork_images_changed(sender: Any, ids: list[int], **kwargs: Any) -> None:
    queueing.images_changed(ids=ids)
