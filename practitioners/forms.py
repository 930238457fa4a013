"""Sign-in forms of the practitioner door."""

from django import forms
from django.utils.translation import gettext_lazy as _

from records.auth import check_practitioner_password


class PractitionerLoginForm(forms.Form):
    """RPPS number or e-mail address, and password; ``clean`` sets ``self.user`` (suspension checked)."""

    identifier = forms.CharField(
        label=_("Numéro RPPS ou adresse électronique"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True, "autocapitalize": "off"}),
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
        identifier, password = cleaned.get("identifier"), cleaned.get("password")
        if identifier and password:
            self.user = check_practitioner_password(self.request, identifier, password)
        return cleaned


class EnrolmentForm(forms.Form):
    """The first code shown by the newly configured authenticator app."""

    code = forms.RegexField(
        label=_("Code à 6 chiffres affiché par l'application"),
        regex=r"^\s*\d{3}\s?\d{3}\s*$",
        error_messages={"invalid": _("Saisissez les 6 chiffres affichés par l'application.")},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "class": "code-input"}
        ),
    )
