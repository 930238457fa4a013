"""The API token page both portals serve: list (with last use), create (shown once), revoke.

The secret of a new token is rendered in the response to the POST that created it, never stored in the session
nor shown again (``access_control.tokens``). Each portal wraps these in its own access check and URLs
(``patients.api_token_views``, ``practitioners.api_token_views``). See docs/api.md.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _

from access_control.models import ApiToken
from access_control.tokens import (
    DEFAULT_LIFETIME_DAYS,
    NewToken,
    TokenRefused,
    do_create_token,
    do_revoke_token,
    tokens_of,
)
from records.actors import signed_in_account
from records.models import User

LIFETIMES = [(30, _("30 jours")), (90, _("90 jours")), (365, _("1 an"))]


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Nom du jeton"),
        max_length=80,
        help_text=_("Par exemple le nom du logiciel ou du poste qui l'utilisera."),
    )
    scope = forms.ChoiceField(label=_("Droits"), choices=ApiToken.Scope.choices, initial=ApiToken.Scope.READ)
    lifetime_days = forms.TypedChoiceField(
        label=_("Durée de validité"), choices=LIFETIMES, coerce=int, initial=DEFAULT_LIFETIME_DAYS
    )


def token_rows(user: User) -> list[ApiToken]:
    """The user's 50 newest tokens (each says whether it is live: ``ApiToken.is_live``)."""
    return list(tokens_of(user)[:50])


def _create_token(request: HttpRequest, form: TokenForm) -> NewToken | None:
    """Create the token from a valid form; returns the new token with its secret, or None (error on the form)."""
    data = form.cleaned_data
    user = signed_in_account(request)  # behind the portal's sign-in decorator
    try:
        return do_create_token(
            user,
            name=data["name"],
            scope=data["scope"],
            lifetime_days=data["lifetime_days"],
            actor=user,
        )
    except TokenRefused as exc:
        form.add_error(None, exc)
        return None


def token_page(request: HttpRequest, *, portal: str, base: str, **context: Any) -> HttpResponse:
    """A portal's token page (``<portal>/tokens.html``): the list and the form; a new token's secret once.

    ``portal`` is the URL namespace and template folder, ``base`` the portal's base template.
    """
    form = TokenForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        new = _create_token(request, form)
        if new is not None:
            context = {"new": new, "base": base, "back": f"{portal}:api_tokens", **context}
            return render(request, "api_tokens/created.html", context)
    return render(
        request, f"{portal}/tokens.html", {"form": form, "tokens": token_rows(signed_in_account(request)), **context}
    )


def revoke_token(request: HttpRequest, token_id: int, *, portal: str) -> HttpResponseRedirect:
    """Revoke one of the account's own tokens (another account's id: 404), back to the portal's token page."""
    user = signed_in_account(request)  # behind the portal's sign-in decorator
    token = get_object_or_404(ApiToken, pk=token_id, user=user)
    do_revoke_token(token, actor=user)
    messages.success(request, _("Le jeton « %(name)s » est révoqué.") % {"name": token.name})
    return redirect(f"{portal}:api_tokens")
