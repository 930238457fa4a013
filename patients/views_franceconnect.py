"""FranceConnect on the patient door: sign-in, activation, and the link on the account (issue 17, item 3).

The protocol is ``accounts.oidc``; who the identity is, ``accounts.franceconnect``. At FranceConnect+ levels
(``CARNET_FRANCECONNECT_STRONG_ACR``, default eidas2 and eidas3) Carnet's second factor is waived; at eidas1 the
sign-in continues at the second-factor page (an activation, at the enrolment of one).
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import oidc
from accounts.auth import Door, begin_provider_sign_in, safe_next
from accounts.franceconnect import NoMatch, UnlinkRefused, account_for, do_unlink_franceconnect
from accounts.models import FranceConnectLink
from accounts.second_factors import confirmed_totp_device
from patients.portal import own_profile_only, portal_view
from patients.views import send_sign_in_code_and_tell
from patients.views_public import ACTIVATION_SESSION_KEY

FC = oidc.Provider.FRANCECONNECT
NEXT_SESSION_KEY = "carnet_franceconnect_next"
FAILED_MESSAGE = _(
    "La connexion par FranceConnect n'a pas abouti. Réessayez, ou connectez-vous avec votre adresse électronique "
    "et votre mot de passe."
)
CANCELLED_MESSAGE = _("Connexion par FranceConnect annulée.")


@never_cache
@require_POST
def start(request):
    """Off to FranceConnect (authorisation code with PKCE, state and nonce)."""
    if not oidc.is_configured(FC):
        return redirect("patients:login")
    request.session[NEXT_SESSION_KEY] = safe_next(request, reverse("patients:dashboard"))
    try:
        return oidc.start(request, FC, request.build_absolute_uri(reverse("patients:franceconnect_callback")))
    except oidc.ProviderRefused:
        messages.error(request, FAILED_MESSAGE)
        return redirect("patients:login")


@never_cache
@require_GET
def callback(request):
    """Back from FranceConnect: the linked account, or the one profile the pivot identity matches, signs in."""
    if not oidc.is_configured(FC):
        return redirect("patients:login")
    try:
        identity = oidc.finish(request, FC)
    except oidc.ProviderRefused as exc:
        messages.error(request, CANCELLED_MESSAGE if exc.reason == "access_denied" else FAILED_MESSAGE)
        return redirect("patients:login")
    try:
        user, activated = account_for(identity.subject, identity.claims)
    except NoMatch:
        return redirect("patients:franceconnect_refused")
    next_url = begin_provider_sign_in(
        request,
        user,
        door=Door.PATIENT,
        provider=FC,
        acr=identity.acr,
        id_token=identity.id_token,
        strong=identity.is_strong(FC),
        next_url=request.session.pop(NEXT_SESSION_KEY, None) or reverse("patients:dashboard"),
        logout_uri=request.build_absolute_uri(reverse("patients:franceconnect_signed_out")),
    )
    if activated:
        messages.success(request, _("Votre espace santé est activé avec FranceConnect."))
    if next_url:
        return redirect(next_url)
    if activated:  # eidas1: a second factor to enrol, as at an activation with the provisional code
        request.session[ACTIVATION_SESSION_KEY] = {"user": user.pk, "step": "second_factor"}
        return redirect("patients:activation_second_factor")
    if confirmed_totp_device(user) is None:
        send_sign_in_code_and_tell(request, user)
    return redirect("patients:verify")


@never_cache
@require_GET
def refused(request):
    """No account for this identity (none, several, or unusable: one answer, no oracle)."""
    return render(request, "patients/public/franceconnect_refused.html")


@require_GET
def signed_out(request):
    """Where FranceConnect sends the browser back after its single logout."""
    messages.success(request, _("Vous êtes déconnecté de Carnet et de FranceConnect."))
    return redirect("patients:home")


@never_cache
@require_http_methods(["GET", "POST"])
@portal_view
@own_profile_only
def account(request):
    """The account's FranceConnect link: whether there is one, and removing it (T1)."""
    link = FranceConnectLink.objects.filter(user=request.user).first()
    if request.method == "POST" and link is not None:
        try:
            do_unlink_franceconnect(request.user, actor=request.user)
        except UnlinkRefused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("FranceConnect ne permet plus de vous connecter à Carnet."))
        return redirect("patients:franceconnect_account")
    return render(request, "patients/account/franceconnect.html", {"link": link, "available": oidc.is_configured(FC)})
