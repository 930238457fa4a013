"""« Mes données » (L5, L6): export, closure, early deletion and re-opening, and the account's settings.

Each step states its consequences before the confirmation. Also here: the e-mail change, the step-up
re-check, the switch between the profiles a legal representative manages (L10) and the activation of a
child's profile.
"""

from typing import cast

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.auth import client_address, safe_next
from accounts.email_verification import EmailCodeRefused, check_email_code, pending_email, send_email_code
from accounts.forms import StepUpForm, render_sign_in
from accounts.second_factors import confirmed_totp_device
from patients.forms import ConfirmForm, EmailChangeForm, EmailCodeForm, RepresentedActivationForm
from patients.portal import (
    CURRENT_PROFILE_SESSION_KEY,
    issue_form_token,
    managed_profiles,
    mark_step_up,
    own_profile_only,
    patient_documents,
    portal_view,
    send_code_and_tell,
    spend_form_token,
    step_up_required,
    step_up_seconds,
)
from records.account_actions import do_set_verified_email, do_trace_export
from records.actions import (
    do_activate_represented_profile,
    do_close_profile,
    do_reopen_profile,
    do_request_early_deletion,
)
from records.export import stream_export
from records.identifiers import mask_nir
from records.lifecycle import early_deletion_due
from records.models import Profile

EMAIL_PURPOSE = "email_change"


# --- Step-up ----------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@portal_view
def step_up(request):
    """Confirm one's identity again (password or code) before a sensitive operation.

    The re-check shares the sign-in counters (account and address): once closed, it answers 429 with
    ``Retry-After``, as the sign-in pages do.
    """
    next_url = safe_next(request, "/espace/")
    form = StepUpForm(request, data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        mark_step_up(request)
        return redirect(next_url)
    context = {
        "form": form,
        "next": next_url,
        "minutes": step_up_seconds() // 60,
        "uses_totp": confirmed_totp_device(request.user) is not None,
    }
    return render_sign_in(request, "patients/account/step_up.html", context, form)


# --- My data ----------------------------------------------------------------------------------------------


@require_GET
@portal_view
def my_data(request):
    profile = request.current_profile
    context = {
        "profile": profile,
        "masked_nir": mask_nir(profile.nir),
        "may_close": profile.state in (Profile.State.OPEN, Profile.State.ACTIVE, Profile.State.SUSPENDED),
        "is_closed": profile.state == Profile.State.CLOSED,
        "may_reopen": profile.state == Profile.State.CLOSED and profile.closure_reason == Profile.ClosureReason.PATIENT,
        "deletion_due": early_deletion_due(timezone.now()),
    }
    return render(request, "patients/account/my_data.html", context)


@require_GET
@portal_view
@step_up_required
def export(request):
    profile = request.current_profile
    documents = patient_documents(request)
    do_trace_export(
        profile, actor=request.user, document_count=documents.count(), client_address=client_address(request)
    )
    response = StreamingHttpResponse(
        stream_export(profile, documents, as_legal_representative=request.acting_as_representative),
        content_type="application/zip",
    )
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="carnet-mes-donnees-{stamp}.zip"'
    return response


def _confirmed_operation(request, *, template: str, operation, success, context=None):
    """A consequences page with an explicit confirmation; the form's one-time token stops a replay."""
    form = ConfirmForm(data=request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if not spend_form_token(request, request.POST.get("form_token")):
            messages.info(request, _("Ce formulaire a déjà été envoyé : rien n'a été refait."))
            return redirect("patients:my_data")
        if form.is_valid():
            try:
                operation()
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, success)
            return redirect("patients:my_data")
    data = cast(QueryDict, form.data).copy() if form.is_bound else None  # bound to request.POST
    if data is not None:
        data["form_token"] = issue_form_token(request)
        form = ConfirmForm(data=data)
        form.is_valid()
    else:
        form = ConfirmForm(initial={"form_token": issue_form_token(request)})
    return render(request, template, {"form": form, "profile": request.current_profile, **(context or {})})


@require_http_methods(["GET", "POST"])
@portal_view
@step_up_required
def close(request):
    profile = request.current_profile
    return _confirmed_operation(
        request,
        template="patients/account/close.html",
        operation=lambda: do_close_profile(profile, actor=request.user, reason=Profile.ClosureReason.PATIENT),
        success=_("Votre espace santé est clôturé. Ses données sont archivées ; vous pouvez le rouvrir."),
    )


@require_http_methods(["GET", "POST"])
@portal_view
@step_up_required
def early_deletion(request):
    profile = request.current_profile
    return _confirmed_operation(
        request,
        template="patients/account/early_deletion.html",
        operation=lambda: do_request_early_deletion(profile, actor=request.user),
        success=_("La suppression est programmée. Vous en recevrez la confirmation."),
        context={"deletion_due": early_deletion_due(timezone.now())},
    )


@require_http_methods(["GET", "POST"])
@portal_view
def reopen(request):
    profile = request.current_profile
    return _confirmed_operation(
        request,
        template="patients/account/reopen.html",
        operation=lambda: do_reopen_profile(profile, actor=request.user),
        success=_("Votre espace santé est rouvert : vos documents et votre historique sont de nouveau disponibles."),
    )


# --- E-mail address --------------------------------------------------------------------------------------


def _send_change_code(request, email: str) -> None:
    send_code_and_tell(
        request,
        lambda: send_email_code(request, email, purpose=EMAIL_PURPOSE),
        _("Un code de vérification a été envoyé à la nouvelle adresse."),
    )


@require_http_methods(["GET", "POST"])
@portal_view
@own_profile_only
@step_up_required
def email_change(request):
    """N2: a new (or the current, unverified) address, used once a code sent to it was typed back."""
    profile = request.profile
    waiting = pending_email(request, EMAIL_PURPOSE)
    if request.method == "POST" and "email" in request.POST:
        form = EmailChangeForm(request.POST)
        if form.is_valid():
            _send_change_code(request, form.cleaned_data["email"])
            return redirect("patients:email_change")
        return render(request, "patients/account/email.html", {"form": form, "profile": profile})
    if request.method == "POST" and "resend" in request.POST and waiting:
        _send_change_code(request, waiting)
        return redirect("patients:email_change")
    code_form = EmailCodeForm(data=request.POST if request.method == "POST" and "code" in request.POST else None)
    if code_form.is_bound and code_form.is_valid():
        try:
            email = check_email_code(request, code_form.cleaned_data["code"], purpose=EMAIL_PURPOSE)
        except EmailCodeRefused as exc:
            code_form.add_error("code", exc)
        else:
            do_set_verified_email(profile, email, actor=request.user)
            messages.success(request, _("Votre adresse électronique est vérifiée."))
            return redirect("patients:notices")
    context = {
        "form": EmailChangeForm(initial={"email": waiting or profile.email}),
        "code_form": code_form,
        "waiting": waiting,
        "profile": profile,
    }
    return render(request, "patients/account/email.html", context)


# --- L10: profiles managed by a legal representative ---------------------------------------------------


@require_POST
@portal_view
def switch_profile(request):
    """Act on one's own profile or on a child's; only profiles the user manages can be chosen (L10)."""
    wanted = request.POST.get("profile", "")
    chosen = next((p for p in managed_profiles(request) if str(p.pk) == wanted), None)
    if chosen is None:
        messages.error(request, _("Ce profil ne fait pas partie de ceux que vous gérez."))
    else:
        request.session[CURRENT_PROFILE_SESSION_KEY] = chosen.pk
        messages.info(request, _("Vous consultez l'espace santé de %(name)s.") % {"name": chosen.display_name})
    return redirect("patients:dashboard")


@require_http_methods(["GET", "POST"])
@portal_view
def activate_child(request):
    """L4 + L10: activate the current (child's) profile with its provisional code."""
    profile = request.current_profile
    if not request.acting_as_representative or profile.state != Profile.State.OPEN:
        return redirect("patients:dashboard")
    form = RepresentedActivationForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            do_activate_represented_profile(
                profile,
                provisional_code=form.cleaned_data["provisional_code"],
                birth_date=form.cleaned_data["birth_date"],
                actor=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("L'espace santé de %(name)s est activé.") % {"name": profile.display_name})
            return redirect("patients:dashboard")
    return render(request, "patients/account/activate_child.html", {"form": form, "profile": profile})
