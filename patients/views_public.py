"""Public pages before activation: opposition during the window (L2) and activation (L4).

Both ask for the NIR, the provisional code and the birth date. They are throttled per client address and per
NIR (``patients.portal.PublicGate``; a closed counter answers 429 with ``Retry-After``) and never say whether a NIR exists: an unknown NIR, a wrong birth date and
a wrong code get the same message after the same hashing work. A more specific message (already opposed,
window closed, code expired) is given only once the provisional code was right.

Activation then runs as a pending sign-in (``accounts.auth``): e-mail verified by a code, a second factor
enrolled (an authenticator app with a QR code, or codes by e-mail), backup codes shown once.
"""

from django.contrib import messages
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts import oidc
from accounts.auth import (
    Door,
    SignInRefused,
    begin_pending_sign_in,
    complete_sign_in,
    confirm_enrolment,
    pending_user,
    refuse_if_closed,
)
from accounts.email_verification import EmailCodeRefused, check_email_code, pending_email, send_email_code
from accounts.forms import render_sign_in
from accounts.second_factors import (
    EnrolmentRefused,
    do_issue_backup_codes,
    email_device,
    totp_qr_data_uri,
    totp_secret,
    unconfirmed_totp_device,
)
from patients.forms import ActivationForm, EmailCodeForm, EnrolTotpForm, IdentityForm
from patients.portal import PublicGate, portal_view, send_code_and_tell
from records import lifecycle
from records.account_actions import do_set_verified_email
from records.actions import do_activate_profile, do_record_opposition
from records.lifecycle import IllegalTransition, InvalidProvisionalCode
from records.models import Profile

OPPOSITION_DONE_SESSION_KEY = "carnet_opposition_done"
ACTIVATION_SESSION_KEY = "carnet_activation"
BACKUP_CODES_SESSION_KEY = "carnet_patient_backup_codes"
EMAIL_PURPOSE = "activation"


def _identified_profile(form) -> Profile | None:
    """The profile whose NIR and birth date were typed, or None, after the same work in every case (no oracle)."""
    data = form.cleaned_data
    profile = Profile.objects.filter(nir=data["nir"]).first()
    if profile is None or profile.birth_date != data["birth_date"]:
        lifecycle.provisional_code_matches(data["provisional_code"], "")  # as costly as a real check
        return None
    return profile


def _refuse_identity(form, gate: PublicGate) -> None:
    gate.record_failure()
    form.add_error(None, InvalidProvisionalCode())


def _gated_profile(request, form, page: str) -> tuple[PublicGate, Profile | None]:
    """The page's gate and the profile the valid form identifies, or None with the refusal on the form.

    A closed gate refuses at once (a 429 with Retry-After through ``render_sign_in``), nothing looked up; an
    unknown identity counts one failure and reads like a wrong code (no oracle).
    """
    gate = PublicGate(request, page=page, nir=form.cleaned_data["nir"])
    try:
        refuse_if_closed(gate)
    except SignInRefused as exc:
        form.add_error(None, exc)
        return gate, None
    profile = _identified_profile(form)
    if profile is None:
        _refuse_identity(form, gate)
    return gate, profile


# --- L2: opposition -------------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def opposition(request):
    form = IdentityForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        gate, profile = _gated_profile(request, form, "opposition")
        if profile is not None:
            try:
                do_record_opposition(profile, actor=None, provisional_code=form.cleaned_data["provisional_code"])
            except InvalidProvisionalCode:
                _refuse_identity(form, gate)
            except IllegalTransition as exc:
                form.add_error(None, exc)
            else:
                request.session[OPPOSITION_DONE_SESSION_KEY] = True
                return redirect("patients:opposition_done")
    return render_sign_in(request, "patients/public/opposition.html", {"form": form}, form)


@never_cache
@require_GET
def opposition_done(request):
    if not request.session.pop(OPPOSITION_DONE_SESSION_KEY, False):
        return redirect("patients:opposition")
    return render(request, "patients/public/opposition_done.html")


# --- L4: activation -------------------------------------------------------------------------------------


def _activation_user(request, *, step: str):
    """The account being activated in this session, if it reached ``step``; else None."""
    user = pending_user(request, Door.PATIENT)
    data = request.session.get(ACTIVATION_SESSION_KEY) or {}
    if user is None or data.get("user") != user.pk:
        return None
    steps = ["email", "second_factor"]
    if steps.index(data.get("step", "email")) < steps.index(step):
        return None
    return user


def _send_activation_code(request, email: str) -> None:
    send_code_and_tell(
        request,
        lambda: send_email_code(request, email, purpose=EMAIL_PURPOSE),
        _("Un code de vérification a été envoyé à votre adresse électronique."),
    )


@never_cache
@require_http_methods(["GET", "POST"])
def activation(request):
    form = ActivationForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        data = form.cleaned_data
        gate, profile = _gated_profile(request, form, "activation")
        if profile is not None:
            try:
                user = do_activate_profile(
                    profile,
                    nir=data["nir"],
                    provisional_code=data["provisional_code"],
                    birth_date=data["birth_date"],
                    password=data["password1"],
                    email=data["email"],
                    actor=None,
                )
            except InvalidProvisionalCode:
                _refuse_identity(form, gate)
            except ValidationError as exc:  # opposed, already active, code expired, password refused
                form.add_error(None, exc)
            else:
                authenticated = authenticate(request, username=user.username, password=data["password1"])
                assert authenticated is not None  # the account was activated with this password just above
                begin_pending_sign_in(request, authenticated, door=Door.PATIENT, next_url=reverse("patients:dashboard"))
                request.session[ACTIVATION_SESSION_KEY] = {"user": user.pk, "step": "email"}
                _send_activation_code(request, data["email"])
                return redirect("patients:activation_email")
    context = {"form": form, "franceconnect": oidc.is_configured(oidc.Provider.FRANCECONNECT)}
    return render_sign_in(request, "patients/public/activation.html", context, form)


@never_cache
@require_http_methods(["GET", "POST"])
def activation_email(request):
    user = _activation_user(request, step="email")
    if user is None:
        messages.info(request, _("Commencez par saisir vos informations d'activation."))
        return redirect("patients:activation")
    email = pending_email(request, EMAIL_PURPOSE) or user.email
    if request.method == "POST" and "resend" in request.POST:
        _send_activation_code(request, user.email)
        return redirect("patients:activation_email")
    form = EmailCodeForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            verified = check_email_code(request, form.cleaned_data["code"], purpose=EMAIL_PURPOSE)
        except EmailCodeRefused as exc:
            form.add_error("code", exc)
        else:
            do_set_verified_email(user.profile, verified, actor=user)
            request.session[ACTIVATION_SESSION_KEY] = {"user": user.pk, "step": "second_factor"}
            return redirect("patients:activation_second_factor")
    return render(request, "patients/public/activation_email.html", {"form": form, "email": email})


@never_cache
@require_http_methods(["GET", "POST"])
def activation_second_factor(request):
    """Enrol a second factor: an authenticator app (QR code), or codes sent by e-mail at each sign-in."""
    user = _activation_user(request, step="second_factor")
    if user is None:
        messages.info(request, _("Commencez par saisir vos informations d'activation."))
        return redirect("patients:activation")
    device = unconfirmed_totp_device(user)
    form = EnrolTotpForm(data=request.POST if request.POST.get("method") == "totp" else None)
    chosen = None
    if request.method == "POST" and request.POST.get("method") == "email":
        chosen = email_device(user)
        codes = do_issue_backup_codes(user, actor=user)
    elif form.is_valid():
        try:
            codes = confirm_enrolment(request, user, device, form.cleaned_data["code"])
        except (SignInRefused, EnrolmentRefused) as exc:
            form.add_error("code", exc)
        else:
            chosen = device
    if chosen is not None:
        request.session.pop(ACTIVATION_SESSION_KEY, None)
        next_url = complete_sign_in(request, user, chosen, door=Door.PATIENT)
        request.session[BACKUP_CODES_SESSION_KEY] = {"codes": codes, "next": next_url}
        messages.success(request, _("Votre espace santé est activé."))
        return redirect("patients:backup_codes")
    context = {"form": form, "qr_code": totp_qr_data_uri(device), "secret": totp_secret(device)}
    return render(request, "patients/public/activation_second_factor.html", context)


@require_GET
@portal_view
def backup_codes(request):
    """The backup codes issued at activation, shown once (they leave the session as they are displayed)."""
    shown = request.session.pop(BACKUP_CODES_SESSION_KEY, None)
    if not shown:
        return redirect("patients:dashboard")
    return render(request, "patients/public/backup_codes.html", {"codes": shown["codes"], "next": shown["next"]})
