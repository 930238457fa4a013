"""Sign-in forms every door shares: identifier and password, the second factor, and the step-up re-check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from accounts.auth import check_second_factor, client_address, refuse_if_closed, retry_after
from accounts.second_factors import confirmed_totp_device
from plumbing.throttling import SignInGate, account_name
from records.actors import signed_in_account
from records.identifiers import NIRField
from records.models import User

if TYPE_CHECKING:
    from django_otp.models import Device
    from django_stubs_ext import StrOrPromise


def render_sign_in(
    request: HttpRequest, template: str, context: dict[str, Any], *forms_shown: forms.Form | None
) -> HttpResponse:
    """Render a sign-in page; a throttled refusal on one of its forms answers 429 with ``Retry-After``."""
    response = render(request, template, context)
    wait = max(
        (
            retry_after(error)
            for form in forms_shown
            if form is not None and form.is_bound
            for errors in form.errors.as_data().values()
            for error in errors
        ),
        default=0,
    )
    if wait:
        response.status_code = 429
        response["Retry-After"] = str(wait)
    return response


class PasswordSignInForm(forms.Form):
    """First step of a sign-in door: an identifier field (named by ``identifier_field``) and a password.

    ``clean`` runs the door's throttled password check (``check_password``) and sets ``self.user``.
    """

    identifier_field = ""
    password = forms.CharField(
        label=_("Mot de passe"),
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user: User | None = None

    def check_password(self, identifier: str, password: str) -> User:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        identifier, password = cleaned.get(self.identifier_field), cleaned.get("password")
        if identifier and password:
            self.user = self.check_password(identifier, password)
        return cleaned


class SecondFactorForm(forms.Form):
    """One code: 6 digits from the authenticator app or the e-mail, or a backup code.

    ``clean_code`` verifies it (throttled) and sets ``self.device`` to the device that accepted it.
    """

    code = forms.CharField(
        label=_("Code de vérification"),
        max_length=32,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autofocus": True,
                "autocapitalize": "off",
                "spellcheck": "false",
                "class": "code-input",
            }
        ),
    )

    def __init__(
        self, request: HttpRequest, user: User, *args: Any, allow_email: bool, prefer_email: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.user = user
        self.allow_email = allow_email
        self.prefer_email = prefer_email
        self.device: Device | None = None

    def clean_code(self) -> str:
        code: str = self.cleaned_data["code"]
        self.device = check_second_factor(
            self.request, self.user, code, allow_email=self.allow_email, prefer_email=self.prefer_email
        )
        return code


class StepUpForm(forms.Form):
    """The re-check before a sensitive operation: the password, or a second-factor code."""

    password = forms.CharField(
        label=_("Mot de passe"),
        required=False,
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    code = forms.CharField(
        label=_("ou un code de vérification (application, courriel ou code de secours)"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "class": "code-input"}),
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        password, code = cleaned.get("password"), cleaned.get("code", "")
        if not password and not code:
            raise ValidationError(_("Saisissez votre mot de passe ou un code de vérification."), code="required")
        user = signed_in_account(self.request)  # behind a door's sign-in decorator
        if password:
            gate = SignInGate(
                account=account_name(user_id=user.pk, door="", identifier=""), address=client_address(self.request)
            )
            refuse_if_closed(gate)
            if not user.check_password(password):
                gate.record_failure()
                raise ValidationError(_("Mot de passe incorrect."), code="invalid_password")
        else:
            allow_email = confirmed_totp_device(user) is None
            check_second_factor(self.request, user, code, allow_email=allow_email)
        return cleaned


# --- Recovery (accounts.recovery) -------------------------------------------------------------------------


class RecoveryRequestForm(forms.Form):
    """Step 1 of a recovery: the identifier the door signs in with."""

    identifier = forms.CharField(
        label=_("Adresse électronique"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True, "autocapitalize": "off"}),
    )

    def __init__(self, *args: Any, label: StrOrPromise | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if label is not None:
            self.fields["identifier"].label = label


class RecoveryCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code reçu par courriel"),
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "class": "code-input", "autofocus": True}
        ),
    )


class NewPasswordForm(forms.Form):
    """A new password, twice, checked by Django's validators (``AUTH_PASSWORD_VALIDATORS``)."""

    password1 = forms.CharField(
        label=_("Nouveau mot de passe"),
        strip=False,
        max_length=256,
        help_text=_("Au moins 10 caractères, pas uniquement des chiffres, pas un mot de passe courant."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
    )
    password2 = forms.CharField(
        label=_("Confirmez le mot de passe"),
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, user: User, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any]:
        super().clean()
        first, second = self.cleaned_data.get("password1"), self.cleaned_data.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("Les deux mots de passe ne sont pas identiques."))
        elif first:
            try:
                validate_password(first, self.user)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return self.cleaned_data


class RecoveryLetterForm(forms.Form):
    """A patient who lost their second factor asks for a provisional code by post."""

    nir = NIRField(
        help_text=_("Les 15 chiffres de votre carte Vitale, avec ou sans espaces."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric", "spellcheck": "false"}),
    )
    birth_date = forms.DateField(
        label=_("Date de naissance"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


class PostalRecoveryForm(RecoveryLetterForm):
    """The code received by post, the identity, and the new password."""

    provisional_code = forms.CharField(
        label=_("Code provisoire reçu par courrier"),
        max_length=40,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
    )
    password1 = NewPasswordForm.base_fields["password1"]
    password2 = NewPasswordForm.base_fields["password2"]
    field_order = ["nir", "birth_date", "provisional_code", "password1", "password2"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        first, second = self.cleaned_data.get("password1"), self.cleaned_data.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("Les deux mots de passe ne sont pas identiques."))
        return self.cleaned_data
