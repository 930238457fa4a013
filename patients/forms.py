"""Forms of the patient door: the e-mail sign-in, activation and the portal (shared sign-in forms: ``accounts.forms``)."""

from typing import cast

from django import forms
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.auth import check_patient_password
from accounts.forms import PasswordSignInForm
from records.identifiers import NIRField
from records.labels import localized_label
from records.models import DocumentType, User


class PatientLoginForm(PasswordSignInForm):
    """E-mail address and password."""

    identifier_field = "email"
    email = forms.EmailField(
        label=_("Adresse électronique"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    field_order = ["email", "password"]

    def check_password(self, identifier: str, password: str):
        return check_patient_password(self.request, identifier, password)


# --- Patient portal (issue 5) --------------------------------------------------------------------------


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class IdentityForm(forms.Form):
    """NIR + provisional code + birth date: who may object to, or activate, a profile (L2, L4)."""

    nir = NIRField(
        help_text=_("Les 15 chiffres de votre carte Vitale, avec ou sans espaces."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric", "spellcheck": "false"}),
    )
    provisional_code = forms.CharField(
        label=_("Code provisoire"),
        max_length=40,
        help_text=_("Le code de 10 caractères reçu par courrier ou par courriel."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
    )
    birth_date = forms.DateField(label=_("Date de naissance"), widget=DateInput())


class ActivationForm(IdentityForm):
    """L4: identity, then the e-mail address and the password of the new account."""

    email = forms.EmailField(
        label=_("Adresse électronique"),
        max_length=254,
        help_text=_("Un code de vérification y sera envoyé."),
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password1 = forms.CharField(
        label=_("Mot de passe"),
        strip=False,
        max_length=256,
        help_text=_("Au moins 10 caractères, pas uniquement des chiffres, pas un mot de passe courant."),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Confirmez le mot de passe"),
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("Les deux mots de passe ne sont pas identiques."))
        elif first:
            try:
                validate_password(first, User(email=cleaned.get("email") or "", kind=User.Kind.PATIENT))
            except ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class EmailCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code reçu par courriel"),
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "class": "code-input", "autofocus": True}
        ),
    )


class EnrolTotpForm(forms.Form):
    code = forms.CharField(
        label=_("Code à 6 chiffres affiché par l'application"),
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "class": "code-input"}),
    )


class DocumentFilterForm(forms.Form):
    """Filters of the document list (all optional, read from the query string)."""

    q = forms.CharField(
        label=_("Rechercher"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("titre, type, auteur, date")}),
    )
    type = forms.ChoiceField(label=_("Type"), required=False)
    document_class = forms.ChoiceField(label=_("Catégorie"), required=False)
    author = forms.ChoiceField(label=_("Auteur"), required=False)
    date_from = forms.DateField(label=_("Date des soins, du"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("au"), required=False, widget=DateInput())

    def __init__(self, *args, types=(), authors=(), **kwargs):
        super().__init__(*args, **kwargs)
        everything = [("", _("Tous"))]
        cast(forms.ChoiceField, self.fields["type"]).choices = everything + [
            (t.code, localized_label(t)) for t in types
        ]
        cast(forms.ChoiceField, self.fields["document_class"]).choices = everything + list(
            DocumentType.DocumentClass.choices
        )
        cast(forms.ChoiceField, self.fields["author"]).choices = (
            everything
            + [("patient", _("Moi-même (documents déposés)"))]
            + [(str(p.pk), p.display_name) for p in authors]
        )


class UploadForm(forms.Form):
    """A10: the patient deposits one of their own documents (DOCPAT types)."""

    document_type = forms.ChoiceField(label=_("Type de document"))
    title = forms.CharField(label=_("Titre"), max_length=200)
    care_date = forms.DateField(
        label=_("Date du document"), required=False, widget=DateInput(), help_text=_("Laissez vide pour aujourd'hui.")
    )
    file = forms.FileField(label=_("Fichier"))
    form_token = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, max_bytes: int, formats: str, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["document_type"]).choices = [
            (t.code, localized_label(t))
            for t in DocumentType.objects.filter(code__startswith="DOCPAT").order_by("code")
        ]
        megabytes = max_bytes / (1024 * 1024)
        self.fields["file"].help_text = _("Formats acceptés : %(formats)s. Taille maximale : %(size)s Mo.") % {
            "formats": formats,
            "size": f"{megabytes:g}",
        }


class DirectorySearchForm(forms.Form):
    """The public directory of practitioners: name, profession, city (at least one)."""

    name = forms.CharField(label=_("Nom"), required=False, max_length=100)
    profession = forms.ChoiceField(label=_("Profession"), required=False)
    city = forms.CharField(label=_("Commune"), required=False, max_length=80)

    def __init__(self, *args, professions=(), **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["profession"]).choices = [("", _("Toutes"))] + [
            (p.code, localized_label(p)) for p in professions
        ]

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        name, city = cleaned.get("name", "").strip(), cleaned.get("city", "").strip()
        if len(name) < 2 and len(city) < 2 and not cleaned.get("profession"):
            raise ValidationError(
                _("Indiquez au moins deux lettres du nom ou de la commune, ou une profession."), code="too_short"
            )
        cleaned["name"], cleaned["city"] = name, city
        return cleaned


class NoticePreferencesForm(forms.Form):
    channel = forms.ChoiceField(label=_("Recevoir les avis"), widget=forms.RadioSelect)
    new_document_notices = forms.BooleanField(label=_("M'avertir quand un nouveau document est déposé"), required=False)

    def __init__(self, *args, email_possible: bool, **kwargs):
        super().__init__(*args, **kwargs)
        email_label = _("par courriel")
        if not email_possible:
            email_label = _("par courriel (vérifiez d'abord votre adresse électronique)")
        cast(forms.ChoiceField, self.fields["channel"]).choices = [
            ("email", email_label),
            ("post", _("par courrier postal")),
        ]
        self.email_possible = email_possible

    def clean_channel(self):
        channel = self.cleaned_data["channel"]
        if channel == "email" and not self.email_possible:
            raise ValidationError(
                _("Les avis ne peuvent être envoyés par courriel qu'à une adresse vérifiée."), code="email_not_verified"
            )
        return channel


class TrailFilterForm(forms.Form):
    WHO_CHOICES = [
        ("", _("Toutes les actions")),
        ("practitioners", _("Accès des professionnels de santé")),
        ("mine", _("Mes propres actions")),
    ]
    who = forms.ChoiceField(label=_("Afficher"), choices=WHO_CHOICES, required=False)
    emergency = forms.BooleanField(label=_("Accès en urgence seulement"), required=False)
    date_from = forms.DateField(label=_("Du"), required=False, widget=DateInput())
    date_to = forms.DateField(label=_("au"), required=False, widget=DateInput())


class EmailChangeForm(forms.Form):
    email = forms.EmailField(
        label=_("Nouvelle adresse électronique"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class ConfirmForm(forms.Form):
    """An explicit confirmation after the consequences were stated, spent once (no double action)."""

    confirm = forms.BooleanField(label=_("J'ai lu ces conséquences et je confirme."))
    form_token = forms.CharField(widget=forms.HiddenInput)


class RepresentedActivationForm(forms.Form):
    """L4 + L10: a representative activates a child's profile with its provisional code."""

    provisional_code = IdentityForm.base_fields["provisional_code"]
    birth_date = forms.DateField(label=_("Date de naissance de l'enfant"), widget=DateInput())
