"""The forgotten-password pages both doors share (``accounts.recovery``), parameterised by the door.

Each door wires them under its own URLs (patients: ``/connexion/oubli/…``, practitioners:
``/pro/connexion/oubli/…``) and its own template, which extends ``registration/recovery.html``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.auth import SignInRefused
from accounts.forms import NewPasswordForm, RecoveryCodeForm, RecoveryRequestForm, SecondFactorForm, render_sign_in
from accounts.recovery import (
    RecoveryRefused,
    Step,
    check_recovery_code,
    do_request_recovery,
    do_reset_password,
    pending_recovery,
    recovery_user,
    second_factor_passed,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# A recovery step's page, as the doors' URL patterns mount it.
PageView = Callable[[HttpRequest], HttpResponse]

SENT_MESSAGE = _(
    "Si un compte correspond à cet identifiant, un code vient de lui être envoyé par courriel. "
    "Il est valable 30 minutes ; une nouvelle demande remplace le code précédent."
)
START_AGAIN_MESSAGE = _("Cette étape a expiré ou n'a pas été commencée : recommencez la demande.")
DONE_MESSAGE = _("Votre mot de passe a été changé. Connectez-vous avec votre nouveau mot de passe.")


@dataclass(frozen=True)
class RecoveryDoor:
    """What differs between the doors: their name, URL namespace, template and identifier label."""

    door: str
    namespace: str
    template: str
    identifier_label: StrOrPromise

    def url(self, name: str) -> str:
        return f"{self.namespace}:{name}"


def _restart(request: HttpRequest, door: RecoveryDoor) -> HttpResponseRedirect:
    messages.info(request, START_AGAIN_MESSAGE)
    return redirect(door.url("recover"))


def request_page(door: RecoveryDoor) -> PageView:
    @never_cache
    @require_http_methods(["GET", "POST"])
    def recover(request: HttpRequest) -> HttpResponse:
        form = RecoveryRequestForm(data=request.POST if request.method == "POST" else None, label=door.identifier_label)
        if form.is_valid():
            try:
                do_request_recovery(request, door=door.door, identifier=form.cleaned_data["identifier"])
            except SignInRefused as exc:
                form.add_error(None, exc)
            except OSError:  # the mail server refused (logged): the same answer, so it tells nothing; ask again
                messages.info(request, SENT_MESSAGE)
                return redirect(door.url("recover_code"))
            else:
                messages.info(request, SENT_MESSAGE)
                return redirect(door.url("recover_code"))
        return render_sign_in(request, door.template, {"form": form, "step": "request"}, form)

    return recover


def code_page(door: RecoveryDoor) -> PageView:
    @never_cache
    @require_http_methods(["GET", "POST"])
    def recover_code(request: HttpRequest) -> HttpResponse:
        data = pending_recovery(request, door.door, Step.CODE)
        if data is None:
            return _restart(request, door)
        form = RecoveryCodeForm(data=request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                step = check_recovery_code(request, data, form.cleaned_data["code"])
            except (SignInRefused, RecoveryRefused) as exc:
                form.add_error("code", exc)
            else:
                return redirect(door.url("recover_password" if step == Step.PASSWORD else "recover_second_factor"))
        return render_sign_in(request, door.template, {"form": form, "step": "code"}, form)

    return recover_code


def second_factor_page(door: RecoveryDoor) -> PageView:
    @never_cache
    @require_http_methods(["GET", "POST"])
    def recover_second_factor(request: HttpRequest) -> HttpResponse:
        data = pending_recovery(request, door.door, Step.SECOND_FACTOR)
        user = recovery_user(data) if data else None
        if data is None or user is None:
            return _restart(request, door)
        form = SecondFactorForm(
            request, user, data=request.POST if request.method == "POST" else None, allow_email=False
        )
        if form.is_valid():
            second_factor_passed(request, data)
            return redirect(door.url("recover_password"))
        return render_sign_in(request, door.template, {"form": form, "step": "second_factor"}, form)

    return recover_second_factor


def password_page(door: RecoveryDoor) -> PageView:
    @never_cache
    @require_http_methods(["GET", "POST"])
    def recover_password(request: HttpRequest) -> HttpResponse:
        data = pending_recovery(request, door.door, Step.PASSWORD)
        user = recovery_user(data) if data else None
        if data is None or user is None:
            return _restart(request, door)
        form = NewPasswordForm(user, data=request.POST if request.method == "POST" else None)
        if form.is_valid():
            do_reset_password(request, user, form.cleaned_data["password1"], actor=user)
            messages.success(request, DONE_MESSAGE)
            return redirect(door.url("login"))
        return render_sign_in(request, door.template, {"form": form, "step": "password"}, form)

    return recover_password
