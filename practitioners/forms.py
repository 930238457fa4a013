"""Forms of the practitioner door: sign-in, then the portal (find, open, emergency, deposit, filters)."""

from typing import cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from access_control.models import AccessMode
from accounts.auth import check_practitioner_password
from accounts.forms import PasswordSignInForm
from records import content_types, storage
from records.crypto import CHUNK_SIZE
from records.identifiers import NIRField
from records.labels import localized_label
from records.lifecycle import is_minor
from records.models import Document, DocumentType
from records.search import matching
from records.storage import RejectedFile


class PractitionerLoginForm(PasswordSignInForm):
    """RPPS number or e-mail address, and password (suspension checked by the door)."""

    identifier_field = "identifier"
    identifier = forms.CharField(
        label=_("Numéro RPPS ou adresse électronique"),
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True, "autocapitalize": "off"}),
    )
    field_order = ["identifier", "password"]

    def check_password(self, identifier: str, password: str):
        return check_practitioner_password(self.request, identifier, password)


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


# --- The portal -------------------------------------------------------------------------------------------


class DateInput(forms.DateInput):
    """A native date picker; the value travels as ISO 8601 (``DateField`` also accepts 31/12/1985)."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


# The box before its label; in the app's templates folder, where the default form renderer looks.
CHECKBOX_TEMPLATE = "practitioners/_checkbox_field.html"


class DocumentTypeField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return localized_label(obj)


DATE_ERRORS = {"invalid": _("Saisissez une date valide, par exemple 12/03/1985.")}


def _birth_date_field():
    return forms.DateField(label=_("Date de naissance"), widget=DateInput(), error_messages=DATE_ERRORS)


def _check_birth_date(value):
    if value is not None and value > timezone.localdate():
        raise ValidationError(_("La date de naissance ne peut pas être dans le futur."), code="future_birth_date")
    if value is not None and value.year < 1880:
        raise ValidationError(_("Vérifiez l'année de naissance."), code="old_birth_date")
    return value


class FindPatientForm(forms.Form):
    """A11: identity traits only, NIR and birth date required, birth name where known. No name search."""

    nir = NIRField(
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autofocus": True, "inputmode": "text", "spellcheck": "false"}
        ),
        help_text=_("15 caractères, espaces permis : 2 85 03 75 114 021 17"),
    )
    birth_date = _birth_date_field()
    birth_name = forms.CharField(
        label=_("Nom de naissance (facultatif)"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_birth_date(self):
        return _check_birth_date(self.cleaned_data.get("birth_date"))


class AttestForm(forms.Form):
    """A1: the care-team attestation given when the record is opened."""

    attests_care_team = forms.BooleanField(
        template_name=CHECKBOX_TEMPLATE,
        label=_("J'atteste faire partie de l'équipe de soins de ce patient."),
        error_messages={
            "required": _("Attestez que vous faites partie de l'équipe de soins du patient pour ouvrir son dossier.")
        },
    )


class EmergencyForm(forms.Form):
    """A7: the emergency mode and, for ``bris_de_glace``, the written justification."""

    mode = forms.ChoiceField(label=_("Type d'accès en urgence"), widget=forms.RadioSelect)
    justification = forms.CharField(
        label=_("Justification (obligatoire pour le bris de glace)"),
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Décrivez la situation d'urgence : elle figurera dans la trace, consultable par le patient."),
    )

    def __init__(self, *args, samu_regulator: bool, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(AccessMode.BRIS_DE_GLACE, _("Bris de glace : urgence vitale, patient hors d'état de consentir"))]
        if samu_regulator:
            choices.append((AccessMode.CENTRE_15, _("Centre 15 : régulation médicale du SAMU")))
        cast(forms.ChoiceField, self.fields["mode"]).choices = choices
        if not samu_regulator:
            self.fields["mode"].initial = AccessMode.BRIS_DE_GLACE

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("mode") == AccessMode.BRIS_DE_GLACE and not (cleaned.get("justification") or "").strip():
            self.add_error(
                "justification",
                ValidationError(_("L'accès en bris de glace exige une justification écrite."), code="required"),
            )
        return cleaned


def _deposit_types():
    # A10: practitioners deposit catalogue types; DOCPAT* are the patient's own documents.
    return DocumentType.objects.exclude(code__startswith="DOCPAT").order_by("label_fr")


def check_upload(upload) -> None:
    """Rule D, A10: the file checked from its bytes (type) and its size before anything else happens.

    The same checks as the store makes (``records.storage.store_body``), made first so that the deposit by
    identity traits refuses a bad file in the same way whoever the patient is.
    """
    max_bytes = settings.CARNET_PRACTITIONER_UPLOAD_MAX_BYTES
    if upload.size is not None and upload.size > max_bytes:
        megabytes = max_bytes / (1024 * 1024)
        raise RejectedFile(
            _("Le fichier dépasse la taille maximale autorisée (%(limit)s Mo)."),
            code="file_too_large",
            params={"limit": number_format(megabytes, 0 if megabytes == int(megabytes) else 1)},
        )
    upload.seek(0)
    head = upload.read(CHUNK_SIZE)
    upload.seek(0)
    if not head:
        raise RejectedFile(_("Le fichier est vide."), code="file_empty")
    detected = content_types.detect_content_type(head)
    if detected not in storage.PRACTITIONER_TYPES:
        raise RejectedFile(
            _("Ce type de fichier n'est pas accepté. Formats acceptés : %(formats)s."),
            code="file_type",
            params={"formats": content_types.describe(storage.PRACTITIONER_TYPES)},
        )


class DepositForm(forms.Form):
    """A10: type from the catalogue, date of care, title, file; A8 hold; A9 minor's secret (minors only)."""

    form_token = forms.CharField(widget=forms.HiddenInput, required=False)
    document_type = DocumentTypeField(
        label=_("Type de document"),
        queryset=DocumentType.objects.none(),
        to_field_name="code",
        empty_label=_("— choisir —"),
        error_messages={"invalid_choice": _("Choisissez un type de document de la liste.")},
    )
    care_date = forms.DateField(label=_("Date des soins"), widget=DateInput(), error_messages=DATE_ERRORS)
    title = forms.CharField(label=_("Titre"), max_length=200)
    file = forms.FileField(
        label=_("Fichier"),
        help_text=_("PDF, JPEG, PNG, TIFF, RTF, texte ou CDA R2 (XML). Le format est vérifié d'après le contenu."),
    )
    hold = forms.BooleanField(
        template_name=CHECKBOX_TEMPLATE,
        label=_("Invisible au patient jusqu'à la consultation d'annonce"),
        required=False,
        help_text=_(
            "Le patient ne verra pas ce document tant que vous ne l'aurez pas rendu visible ; il est prévenu "
            "au bout de 14 jours et le document devient visible automatiquement au bout de 30 jours."
        ),
    )
    minors_secret = forms.BooleanField(
        template_name=CHECKBOX_TEMPLATE,
        label=_("Secret du mineur : invisible aux représentants légaux"),
        required=False,
        help_text=_("À la demande du patient mineur ; ses représentants légaux ne verront pas ce document."),
    )

    def __init__(self, *args, minor: bool | None, **kwargs):
        """``minor``: whether the patient is a minor; ``None`` when the form itself asks for the birth date."""
        super().__init__(*args, **kwargs)
        self.minor = minor
        cast(forms.ModelChoiceField, self.fields["document_type"]).queryset = _deposit_types()
        if minor is False:
            del self.fields["minors_secret"]  # A9 concerns a minor's record only

    def clean_care_date(self):
        value = self.cleaned_data.get("care_date")
        if value is not None and value > timezone.localdate():
            raise ValidationError(_("La date des soins ne peut pas être dans le futur."), code="future_care_date")
        return value

    def clean_title(self):
        title = (self.cleaned_data.get("title") or "").strip()
        if not title:
            raise ValidationError(_("Indiquez le titre du document."), code="title_required")
        return title

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload is not None:
            try:
                check_upload(upload)
            except RejectedFile as exc:
                raise ValidationError(exc.messages[0], code=exc.code) from None
        return upload

    def minor_at(self, birth_date) -> bool:
        return self.minor if self.minor is not None else (birth_date is not None and is_minor(birth_date))

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("minors_secret") and not self.minor_at(cleaned.get("birth_date")):
            self.add_error(
                "minors_secret",
                ValidationError(
                    _("Le secret du mineur ne s'applique qu'au dossier d'un patient mineur."), code="not_a_minor"
                ),
            )
        return cleaned


class IdentityDepositForm(DepositForm):
    """A10 without opening the record: the patient's identity traits, all three required here."""

    nir = NIRField(widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    birth_date = _birth_date_field()
    birth_name = forms.CharField(label=_("Nom de naissance"), max_length=100)

    field_order = ["nir", "birth_date", "birth_name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, minor=None, **kwargs)

    def clean_birth_date(self):
        return _check_birth_date(self.cleaned_data.get("birth_date"))


class RecordFilterForm(forms.Form):
    """Filters of the record page, from the query string; choices come from the visible documents only."""

    q = forms.CharField(
        label=_("Rechercher"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": _("titre, type, auteur, date")}),
    )
    type = forms.ChoiceField(label=_("Type"), required=False)
    document_class = forms.ChoiceField(label=_("Classe"), required=False)
    author = forms.ChoiceField(label=_("Auteur"), required=False)
    date_from = forms.DateField(label=_("Soins du"), required=False, widget=DateInput(), error_messages=DATE_ERRORS)
    date_to = forms.DateField(label=_("au"), required=False, widget=DateInput(), error_messages=DATE_ERRORS)

    def __init__(self, *args, types, authors, **kwargs):
        super().__init__(*args, **kwargs)
        everything = [("", _("Tous"))]
        cast(forms.ChoiceField, self.fields["type"]).choices = everything + list(types)
        cast(forms.ChoiceField, self.fields["document_class"]).choices = everything + list(
            DocumentType.DocumentClass.choices
        )
        cast(forms.ChoiceField, self.fields["author"]).choices = everything + list(authors)

    def apply(self, documents):
        """The documents narrowed by the valid filters (invalid ones are ignored and shown as errors)."""
        if not self.is_valid():
            return documents
        data = self.cleaned_data
        # Narrows the door's queryset only (records.search): the search sees what the door lets through.
        documents = matching(documents, data.get("q") or "")
        if data.get("type"):
            documents = documents.filter(document_type__code=data["type"])
        if data.get("document_class"):
            documents = documents.filter(document_type__class_code=data["document_class"])
        author = data.get("author")
        if author == "patient":
            documents = documents.filter(author_kind=Document.AuthorKind.PATIENT)
        elif author:
            documents = documents.filter(author_practitioner_id=int(author))
        if data.get("date_from"):
            documents = documents.filter(care_date__gte=data["date_from"])
        if data.get("date_to"):
            documents = documents.filter(care_date__lte=data["date_to"])
        return documents
