"""Top-level URL configuration."""

from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from oauth2_provider import views as oauth

from accounts.admin_site import site as admin_site
from plumbing.text_size import set_text_size
from records.health import run_readiness_checks


@require_GET
def healthz(request):
    """Liveness: the process answers. It checks nothing else, so that a database outage never restarts it."""
    return HttpResponse("ok", content_type="text/plain")


@never_cache
@require_GET
def readyz(request):
    """Readiness: 200 when every check of ``records.health`` passes, else 503 naming those that failed."""
    outcome = run_readiness_checks()
    ready = all(outcome.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {name: "ok" if passed else "failed" for name, passed in outcome.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("taille-du-texte/", set_text_size, name="text_size"),
    path("admin/", admin_site.urls),
    # Connected apps' authorisation server (issue 17): token and revocation; authorisation is the patient
    # portal's consent page (patients:authorise_app), discovery is /fhir/.well-known/smart-configuration.
    path("oauth/token/", oauth.TokenView.as_view(), name="oauth-token"),
    path("oauth/revoke/", oauth.RevokeTokenView.as_view(), name="oauth-revoke"),
    path("", include("config.api_urls")),  # /api/ and /fhir/ (issue 8)
    path("pro/", include("practitioners.urls")),
    path("", include("patients.urls")),
]
