"""Patient-facing pages: home, sign-in (password, then second factor), sign-out, dashboard.

The other portal pages live in ``views_public`` (opposition, activation), ``views_documents``, ``views_access``
(who can see my record), ``views_trail`` (trail, notices) and ``views_account`` (my data, step-up, profiles).
"""

from django.contrib import messages
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access_control.models import TrailEntry
from access_control.queries import trail_for_patient
from access_control.rules import Action
from accounts import oidc
from accounts.auth import (
    Door,
    begin_pending_sign_in,
    complete_sign_in,
    pending_user,
    safe_next,
    session_is_current,
    sign_out_everywhere,
)
from accounts.forms import SecondFactorForm, render_sign_in
from accounts.second_factors import confirmed_totp_device, send_sign_in_code
from notifications.queries import notices_for_profile
from patients.forms import PatientLoginForm
from patients.portal import patient_documents, pending_holds_count, portal_view, send_code_and_tell
from records.models import Profile, User

DASHBOARD_ITEMS = 5
EMAIL_CHOSEN_SESSION_KEY = "carnet_signin_by_email"  # a patient with an app asked for an e-mailed code


@require_GET
def home(request):
    return render(request, "patients/home.html")


def send_sign_in_code_and_tell(request: HttpRequest, user: User) -> None:
    """E-mail a sign-in code to a patient without an authenticator app, and say so."""
    send_code_and_tell(
        request, lambda: send_sign_in_code(user), _("Un code de vérification vous a été envoyé par courriel.")
    )


@never_cache
@require_http_methods(["GET", "POST"])
def login(request):
    form = PatientLoginForm(request, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        assert form.user is not None  # set by a valid form's clean()
        begin_pending_sign_in(
            request, form.user, door=Door.PATIENT, next_url=safe_next(request, reverse("patients:dashboard"))
        )
        if confirmed_totp_device(form.user) is None:
            send_sign_in_code_and_tell(request, form.user)
        return redirect("patients:verify")
    context = {
        "form": form,
        "next": safe_next(request, ""),
        "franceconnect": oidc.is_configured(oidc.Provider.FRANCECONNECT),
    }
    return render_sign_in(request, "patients/login.html", context, form)


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request):
    """The second factor: the authenticator app, a backup code, or a code e-mailed on request (always without app)."""
    user = pending_user(request, Door.PATIENT)
    if user is None:
        messages.info(request, _("Identifiez-vous pour continuer."))
        return redirect("patients:login")
    uses_totp = confirmed_totp_device(user) is not None
    if request.method == "GET" and "application" in request.GET:
        request.session.pop(EMAIL_CHOSEN_SESSION_KEY, None)  # back to the app's codes
    if request.method == "POST" and "resend" in request.POST:
        if uses_totp:
            request.session[EMAIL_CHOSEN_SESSION_KEY] = user.pk
        send_sign_in_code_and_tell(request, user)
        return redirect("patients:verify")
    by_email = not uses_totp or request.session.get(EMAIL_CHOSEN_SESSION_KEY) == user.pk
    form = SecondFactorForm(
        request,
        user,
        data=request.POST if request.method == "POST" else None,
        allow_email=by_email,
        prefer_email=by_email,
    )
    if form.is_valid():
        request.session.pop(EMAIL_CHOSEN_SESSION_KEY, None)
        return redirect(complete_sign_in(request, user, form.device, door=Door.PATIENT))
    context = {"form": form, "uses_totp": uses_totp, "by_email": by_email}
    return render_sign_in(request, "patients/verify.html", context, form)


@require_POST
def logout(request):
    """Sign out; after a Pro Santé Connect or FranceConnect sign-in, at the provider too (single logout)."""
    provider_logout = oidc.sign_out(request)
    if provider_logout:
        return redirect(provider_logout)
    messages.success(request, _("Vous êtes déconnecté."))
    return redirect("patients:home")


@require_POST
def logout_everywhere(request):
    """Sign out of every device (rotates the session epoch, see ``accounts.auth``)."""
    if request.user.is_authenticated and request.user.is_verified() and session_is_current(request):
        sign_out_everywhere(request)
        messages.success(request, _("Vous êtes déconnecté de tous vos appareils."))
    else:
        auth_logout(request)
        messages.success(request, _("Vous êtes déconnecté."))
    return redirect("patients:home")


@require_GET
@portal_view
def dashboard(request):
    """Latest documents, latest named accesses (T3), holds the patient was told of (A8), notices sent (N7)."""
    profile = request.current_profile
    accesses = trail_for_patient(profile, as_legal_representative=request.acting_as_representative).filter(
        actor_kind=TrailEntry.ActorKind.PRACTITIONER,
        action__in=[Action.OPEN_RECORD, Action.OPEN_DOCUMENT],
        outcome=TrailEntry.Outcome.ALLOWED,
    )
    context = {
        "profile": profile,
        "first_name": profile.first_names.split(" ")[0],
        "documents": list(patient_documents(request)[:DASHBOARD_ITEMS]),
        "accesses": list(accesses[:DASHBOARD_ITEMS]),
        "held": pending_holds_count(request),
        "notices": list(notices_for_profile(profile)[:DASHBOARD_ITEMS]),
        "child_to_activate": request.acting_as_representative and profile.state == Profile.State.OPEN,
    }
    return render(request, "patients/dashboard.html", context)
