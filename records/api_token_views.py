"""API token pages of the patient portal: list (with last use), create (after the step-up re-check, shown
once), revoke. A token acts for the account: for the holder's profile and the minors' profiles they manage
(L10). See docs/api.md and ``access_control.tokens``."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from access_control.models import ApiToken
from access_control.tokens import do_revoke_token
from practitioners.api_token_views import TokenForm, create_token, token_rows

from .portal import portal_view, step_up_required


@never_cache
@require_http_methods(["GET", "POST"])
@portal_view
@step_up_required
def tokens(request):
    form = TokenForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        new = create_token(request, form)
        if new is not None:
            return render(request, "records/tokens_created.html", {"new": new})
    return render(request, "records/tokens.html", {"form": form, "tokens": token_rows(request.user)})


@require_POST
@portal_view
def revoke(request, token_id):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    do_revoke_token(token, actor=request.user)
    messages.success(request, _("Le jeton « %(name)s » est révoqué.") % {"name": token.name})
    return redirect("records:api_tokens")


urlpatterns = [
    path("", tokens, name="api_tokens"),
    path("<int:token_id>/revoquer/", revoke, name="api_token_revoke"),
]
