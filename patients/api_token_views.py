"""API token pages of the patient portal: list (with last use), create, revoke.

A new token is created after the step-up re-check and shown once. A token acts for the account: for the
holder's profile and the minors' profiles they manage (L10). See docs/api.md and ``access_control.tokens``.
"""

from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.token_views import revoke_token, token_page
from patients.portal import portal_view, step_up_required


@never_cache
@require_http_methods(["GET", "POST"])
@portal_view
@step_up_required
def tokens(request):
    return token_page(request, portal="patients", base="patients/portal_base.html")


@require_POST
@portal_view
def revoke(request, token_id):
    return revoke_token(request, token_id, portal="patients")


urlpatterns = [
    path("", tokens, name="api_tokens"),
    path("<int:token_id>/revoquer/", revoke, name="api_token_revoke"),
]
