"""Practitioner sign-in: Pro Santé Connect, or password then the mandatory TOTP; backup codes; forgotten password.

The TOTP is enrolled at the first sign-in; recovery is ``accounts.recovery``. A lost authenticator app is reset by the staff desk
(``accounts.recovery.do_reset_second_factor``): the next sign-in then enrols a new one.

Pro Santé Connect (``accounts.oidc``, ``accounts.psc``): the RPPS it attests must be an active practitioner with a
Carnet account. At a strong level of assurance (``CARNET_PSC_STRONG_ACR``) the TOTP is waived; otherwise the
sign-in continues at the TOTP page like after a password.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import oidc, recovery_pages
from accounts.auth import (
    Door,
    SignInRefused,
    begin_pending_sign_in,
    begin_provider_sign_in,
    complete_sign_in,
    confirm_enrolment,
    pending_user,
    practitioner_required,
    safe_next,
)
from accounts.forms import SecondFactorForm, render_sign_in
from accounts.psc import PractitionerRefused, practitioner_account
from accounts.second_factors import (
    EnrolmentRefused,
    confirmed_totp_device,
    do_issue_backup_codes,
    totp_qr_data_uri,
    totp_secret,
    unconfirmed_totp_device,
)

from .forms import EnrolmentForm, PractitionerLoginForm

BACKUP_CODES_SESSION_KEY = "carnet_backup_codes_to_show"
PSC_NEXT_SESSION_KEY = "carnet_psc_next"
PSC_FAILED_MESSAGE = _(
    "La connexion par Pro Santé Connect n'a pas abouti. Réessayez, ou connectez-vous avec votre identifiant et "
    "votre mot de passe."
)
PSC_CANCELLED_MESSAGE = _("Connexion par Pro Santé Connect annulée.")


@never_cache
@require_http_methods(["GET", "POST"])
def login(request):
    form = PractitionerLoginForm(request, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        assert form.user is not None  # set by a valid form's clean()
        begin_pending_sign_in(
            request, form.user, door=Door.PRACTITIONER, next_url=safe_next(request, reverse("practitioners:home"))
        )
        if confirmed_totp_device(form.user) is None:
            return redirect("practitioners:enrol")
        return redirect("practitioners:verify")
    context = {"form": form, "next": safe_next(request, ""), "psc": oidc.is_configured(oidc.Provider.PSC)}
    return render_sign_in(request, "practitioners/login.html", context, form)


def _after_sign_in(request, user, next_url: str):
    """Where a sign-in goes once its first step passed: home (done), or the TOTP (verify, or enrol a first one)."""
    if next_url:
        return redirect(next_url)
    return redirect("practitioners:enrol" if confirmed_totp_device(user) is None else "practitioners:verify")


@never_cache
@require_POST
def psc_start(request):
    """Off to Pro Santé Connect (authorisation code with PKCE, state and nonce: ``accounts.oidc``)."""
    if not oidc.is_configured(oidc.Provider.PSC):
        return redirect("practitioners:login")
    request.session[PSC_NEXT_SESSION_KEY] = safe_next(request, reverse("practitioners:home"))
    try:
        return oidc.start(request, oidc.Provider.PSC, request.build_absolute_uri(reverse("practitioners:psc_callback")))
    except oidc.ProviderRefused:
        messages.error(request, PSC_FAILED_MESSAGE)
        return redirect("practitioners:login")


@never_cache
@require_GET
def psc_callback(request):
    """Back from Pro Santé Connect: the RPPS it attests signs in its practitioner, or is refused (nothing created)."""
    if not oidc.is_configured(oidc.Provider.PSC):
        return redirect("practitioners:login")
    try:
        identity = oidc.finish(request, oidc.Provider.PSC)
        user = practitioner_account(identity.claims)
    except oidc.ProviderRefused as exc:
        messages.error(request, PSC_CANCELLED_MESSAGE if exc.reason == "access_denied" else PSC_FAILED_MESSAGE)
        return redirect("practitioners:login")
    except PractitionerRefused as exc:
        messages.error(request, exc.message)
        return redirect("practitioners:login")
    next_url = begin_provider_sign_in(
        request,
        user,
        door=Door.PRACTITIONER,
        provider=oidc.Provider.PSC,
        acr=identity.acr,
        id_token=identity.id_token,
        strong=identity.is_strong(oidc.Provider.PSC),
        next_url=request.session.pop(PSC_NEXT_SESSION_KEY, None) or reverse("practitioners:home"),
        logout_uri=request.build_absolute_uri(reverse("practitioners:psc_signed_out")),
    )
    return _after_sign_in(request, user, next_url)


@require_GET
def psc_signed_out(request):
    """Where Pro Santé Connect sends the browser back after its single logout."""
    messages.success(request, _("Vous êtes déconnecté de Carnet et de Pro Santé Connect."))
    return redirect("practitioners:login")


def _pending_or_login(request):
    user = pending_user(request, Door.PRACTITIONER)
    if user is None:
        messages.info(request, _("Identifiez-vous pour continuer."))
    return user


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request):
    user = _pending_or_login(request)
    if user is None:
        return redirect("practitioners:login")
    if confirmed_totp_device(user) is None:
        return redirect("practitioners:enrol")
    form = SecondFactorForm(request, user, data=request.POST if request.method == "POST" else None, allow_email=False)
    if form.is_valid():
        return redirect(complete_sign_in(request, user, form.device, door=Door.PRACTITIONER))
    return render_sign_in(request, "practitioners/verify.html", {"form": form}, form)


@never_cache
@require_http_methods(["GET", "POST"])
def enrol(request):
    """First sign-in: configure an authenticator app (QR code or secret), confirm it with a first code."""
    user = _pending_or_login(request)
    if user is None:
        return redirect("practitioners:login")
    if confirmed_totp_device(user) is not None:
        return redirect("practitioners:verify")
    device = unconfirmed_totp_device(user)
    form = EnrolmentForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            codes = confirm_enrolment(request, user, device, form.cleaned_data["code"])
        except (SignInRefused, EnrolmentRefused) as exc:
            form.add_error("code", exc)
        else:
            next_url = complete_sign_in(request, user, device, door=Door.PRACTITIONER)
            request.session[BACKUP_CODES_SESSION_KEY] = {"codes": codes, "next": next_url}
            return redirect("practitioners:backup_codes")
    context = {"form": form, "qr_code": totp_qr_data_uri(device), "secret": totp_secret(device)}
    return render_sign_in(request, "practitioners/enrol.html", context, form)


@require_GET
@practitioner_required
def backup_codes(request):
    """Shows freshly issued backup codes, once: they leave the session as they are displayed."""
    shown = request.session.pop(BACKUP_CODES_SESSION_KEY, None)
    if not shown:
        return redirect("practitioners:home")
    return render(request, "practitioners/backup_codes.html", {"codes": shown["codes"], "next": shown["next"]})


@require_POST
@practitioner_required
def renew_backup_codes(request):
    codes = do_issue_backup_codes(request.user, actor=request.user)
    request.session[BACKUP_CODES_SESSION_KEY] = {"codes": codes, "next": reverse("practitioners:home")}
    return redirect("practitioners:backup_codes")


# --- Forgotten password (accounts.recovery) ----------------------------------------------------------------

RECOVERY = recovery_pages.RecoveryDoor(
    door=Door.PRACTITIONER,
    namespace="practitioners",
    template="practitioners/recovery.html",
    identifier_label=_("Numéro RPPS ou adresse électronique"),
)
recover = recovery_pages.request_page(RECOVERY)
recover_code = recovery_pages.code_page(RECOVERY)
recover_second_factor = recovery_pages.second_factor_page(RECOVERY)
recover_password = recovery_pages.password_page(RECOVERY)
