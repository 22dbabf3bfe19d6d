from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from gallery.models import Artwork


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The collection, newest first, a page at a time (the search page replaces this later)."""
    page = Paginator(Artwork.objects.order_by("title", "id"), 48).get_page(request.GET.get("page"))
    return render(request, "gallery/home.html", {"page": page})
