"""Patient-facing pages: home, sign-in (password, then second factor), sign-out, dashboard."""

import smtplib

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .auth import (
    Door,
    begin_pending_sign_in,
    complete_sign_in,
    patient_required,
    pending_user,
    safe_next,
    session_is_current,
    sign_out_everywhere,
)
from .forms import PatientLoginForm, SecondFactorForm
from .second_factors import confirmed_totp_device, send_sign_in_code


@require_GET
def home(request):
    return render(request, "records/home.html")


def _send_code(request, user) -> None:
    try:
        sent = send_sign_in_code(user)
    except (smtplib.SMTPException, OSError):
        messages.error(request, _("Le code n'a pas pu être envoyé. Réessayez dans quelques instants."))
        return
    if sent:
        messages.info(request, _("Un code de vérification vous a été envoyé par courriel."))
    else:
        messages.info(request, _("Un code vous a été envoyé il y a moins d'une minute : utilisez-le."))


@never_cache
@require_http_methods(["GET", "POST"])
def login(request):
    form = PatientLoginForm(request, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        begin_pending_sign_in(
            request, form.user, door=Door.PATIENT, next_url=safe_next(request, reverse("records:dashboard"))
        )
        if confirmed_totp_device(form.user) is None:
            _send_code(request, form.user)
        return redirect("records:verify")
    return render(request, "records/login.html", {"form": form, "next": safe_next(request, "")})


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request):
    user = pending_user(request, Door.PATIENT)
    if user is None:
        messages.info(request, _("Identifiez-vous pour continuer."))
        return redirect("records:login")
    uses_totp = confirmed_totp_device(user) is not None
    if request.method == "POST" and "resend" in request.POST and not uses_totp:
        _send_code(request, user)
        return redirect("records:verify")
    form = SecondFactorForm(
        request, user, data=request.POST if request.method == "POST" else None, allow_email=not uses_totp
    )
    if form.is_valid():
        return redirect(complete_sign_in(request, user, form.device, door=Door.PATIENT))
    return render(request, "records/verify.html", {"form": form, "uses_totp": uses_totp})


@require_POST
def logout(request):
    auth_logout(request)
    messages.success(request, _("Vous êtes déconnecté."))
    return redirect("records:home")


@require_POST
def logout_everywhere(request):
    """Sign out of every device (rotates the session epoch, see ``records.auth``)."""
    if request.user.is_authenticated and request.user.is_verified() and session_is_current(request):
        sign_out_everywhere(request)
        messages.success(request, _("Vous êtes déconnecté de tous vos appareils."))
    else:
        auth_logout(request)
        messages.success(request, _("Vous êtes déconnecté."))
    return redirect("records:home")


@require_GET
@patient_required
def dashboard(request):
    profile = request.profile
    return render(
        request,
        "records/dashboard.html",
        {"profile": profile, "first_name": profile.first_names.split(" ")[0]},
    )
