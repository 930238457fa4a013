"""Top-level URL configuration."""

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET

from accounts.admin_site import site as admin_site


@require_GET
def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin_site.urls),
    path("", include("config.api_urls")),  # /api/ and /fhir/ (issue 8)
    path("pro/", include("practitioners.urls")),
    path("", include("patients.urls")),
]
