"""Sign-in forms every door shares: identifier and password, the second factor, and the step-up re-check."""

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.auth import THROTTLED_MESSAGE, SignInRefused, check_second_factor, client_address
from accounts.second_factors import confirmed_totp_device
from plumbing.throttling import SignInGate, account_name


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

    def __init__(self, request, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.user = None

    def check_password(self, identifier: str, password: str):
        raise NotImplementedError

    def clean(self):
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

    def __init__(self, request, user, *args, allow_email: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.user = user
        self.allow_email = allow_email
        self.device = None

    def clean_code(self):
        code = self.cleaned_data["code"]
        self.device = check_second_factor(self.request, self.user, code, allow_email=self.allow_email)
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

    def __init__(self, request, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        password, code = cleaned.get("password"), cleaned.get("code", "")
        if not password and not code:
            raise ValidationError(_("Saisissez votre mot de passe ou un code de vérification."), code="required")
        user = self.request.user
        if password:
            gate = SignInGate(
                account=account_name(user_id=user.pk, door="", identifier=""), address=client_address(self.request)
            )
            if gate.is_closed():
                raise SignInRefused(THROTTLED_MESSAGE, code="throttled")
            if not user.check_password(password):
                gate.record_failure()
                raise ValidationError(_("Mot de passe incorrect."), code="invalid_password")
        else:
            allow_email = confirmed_totp_device(user) is None
            check_second_factor(self.request, user, code, allow_email=allow_email)
        return cleaned
