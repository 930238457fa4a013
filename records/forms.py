"""Sign-in forms of the patient door (the second-factor form serves the practitioner door too)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .auth import check_patient_password, check_second_factor


class PatientLoginForm(forms.Form):
    """E-mail address and password; ``clean`` runs the throttled password check and sets ``self.user``."""

    email = forms.EmailField(
        label=_("Adresse électronique"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
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

    def clean(self):
        cleaned = super().clean()
        email, password = cleaned.get("email"), cleaned.get("password")
        if email and password:
            self.user = check_patient_password(self.request, email, password)
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
