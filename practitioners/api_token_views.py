"""API token pages of the practitioner portal: list (with last use), create (shown once), revoke.

Reached only through ``practitioner_required``: a session that passed the second factor (TOTP or a backup
code). The pages themselves are ``accounts.token_views``. See docs/api.md.
"""

from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.auth import practitioner_required
from accounts.token_views import revoke_token, token_page


@never_cache
@require_http_methods(["GET", "POST"])
@practitioner_required
def tokens(request):
    return token_page(request, portal="practitioners", base="practitioners/_portal.html", nav="tokens")


@require_POST
@practitioner_required
def revoke(request, token_id):
    return revoke_token(request, token_id, portal="practitioners")


urlpatterns = [
    path("", tokens, name="api_tokens"),
    path("<int:token_id>/revoquer/", revoke, name="api_token_revoke"),
]
