from django.conf import settings
from django.contrib import admin
from django.urls import path

from gallery import views
from gallery.health import healthz
from search.api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]

handler500 = "gallery.middleware.server_error"

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
