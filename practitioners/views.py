"""Practitioner pages: sign-in (password, then mandatory TOTP, enrolled at the first sign-in) and home."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from records.auth import (
    Door,
    SignInRefused,
    begin_pending_sign_in,
    complete_sign_in,
    confirm_enrolment,
    pending_user,
    practitioner_required,
    safe_next,
)
from records.forms import SecondFactorForm
from records.second_factors import (
    EnrolmentRefused,
    confirmed_totp_device,
    do_issue_backup_codes,
    remaining_backup_codes,
    totp_qr_data_uri,
    totp_secret,
    unconfirmed_totp_device,
)

from .forms import EnrolmentForm, PractitionerLoginForm

BACKUP_CODES_SESSION_KEY = "carnet_backup_codes_to_show"


@never_cache
@require_http_methods(["GET", "POST"])
def login(request):
    form = PractitionerLoginForm(request, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        begin_pending_sign_in(
            request, form.user, door=Door.PRACTITIONER, next_url=safe_next(request, reverse("practitioners:home"))
        )
        if confirmed_totp_device(form.user) is None:
            return redirect("practitioners:enrol")
        return redirect("practitioners:verify")
    return render(request, "practitioners/login.html", {"form": form, "next": safe_next(request, "")})


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
    return render(request, "practitioners/verify.html", {"form": form})


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
    return render(request, "practitioners/enrol.html", context)


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


@require_GET
@practitioner_required
def home(request):
    context = {"practitioner": request.practitioner, "backup_codes_left": remaining_backup_codes(request.user)}
    return render(request, "practitioners/home.html", context)
