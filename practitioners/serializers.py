"""Request and response bodies of the practitioner API (``practitioners.api``).

Plain serializers: they validate input and shape output; the rules live in the door and the actions, never here.
"""

from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import ISO_8601, serializers
from rest_framework.settings import api_settings

from access_control.models import AccessMode
from plumbing.api_shapes import DocumentMetadataSerializer
from records.identifiers import validate_nir
from records.models import Document

from .models import Practitioner


def _check_birth_date(value):
    if value > timezone.localdate():
        raise serializers.ValidationError(_("La date de naissance ne peut pas être dans le futur."))
    return value


class IdentityTraitsSerializer(serializers.Serializer):
    """A11: NIR and birth date required, birth name where known. No name-only search exists."""

    nir = serializers.CharField(max_length=30, help_text=_("NIR à 15 caractères (espaces permis)."))
    birth_date = serializers.DateField(validators=[_check_birth_date])
    birth_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")

    def validate_nir(self, value):
        try:
            return validate_nir(value)
        except DjangoValidationError as exc:  # I1, with the identifier's own French message
            raise serializers.ValidationError(exc.messages) from None


class PatientSerializer(serializers.Serializer):
    """The found patient. ``handle`` stands for the profile in every following URL (``access_control.handles``)."""

    handle = serializers.CharField()
    first_names = serializers.CharField()
    birth_name = serializers.CharField()
    usual_name = serializers.CharField()
    birth_date = serializers.DateField()
    sex = serializers.CharField()
    opened_mode = serializers.CharField(allow_blank=True, help_text=_("Mode d'accès de l'ouverture, vide sinon."))


class OpenRecordSerializer(serializers.Serializer):
    """A1: normal access with the care-team attestation; A7: emergency with a mode (and a justification)."""

    mode = serializers.ChoiceField(choices=AccessMode.choices, default=AccessMode.NORMAL)
    attests_care_team = serializers.BooleanField(default=False)
    justification = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class DocumentSerializer(DocumentMetadataSerializer):
    """One visible document's metadata (A2, A4, A12 already applied by the door)."""

    sha256 = serializers.CharField()
    held_from_patient = serializers.BooleanField(source="is_held", help_text=_("A8 : invisible au patient."))
    minors_secret = serializers.BooleanField(source="hidden_from_representatives")


# What ``listed_documents`` reads, for ``QuerySet.values()`` on the door's listing.
LISTING_COLUMNS = (
    "id",
    "title",
    "document_type__code",
    "document_type__code_system",
    "document_type__label_fr",
    "document_type__class_code",
    "author_kind",
    "author_practitioner__rpps",
    "author_practitioner__title",
    "author_practitioner__first_name",
    "author_practitioner__last_name",
    "author_practitioner__profession__label_fr",
    "care_date",
    "deposited_at",
    "content_type",
    "size",
    "sha256",
    "held_until",
    "hold_released_at",
    "hidden_from_representatives",
)
_DATE = serializers.DateField()
_DATETIME = serializers.DateTimeField()


def _date(value: Any) -> str | None:
    return None if value is None else _DATE.to_representation(value)


def _instants() -> Callable[[Any], str | None]:
    """DRF's ``DateTimeField().to_representation`` with the current time zone looked up once (per listing).

    The fast path is DRF's own steps for an aware instant under ``USE_TZ`` and the default ISO 8601 format
    (``astimezone``, ``isoformat``, ``Z`` for UTC); anything else goes through DRF's field itself.
    """
    zone = timezone.get_current_timezone() if settings.USE_TZ else None
    iso = api_settings.DATETIME_FORMAT is not None and api_settings.DATETIME_FORMAT.lower() == ISO_8601

    def instant(value: Any) -> str | None:
        if not value:
            return None
        if zone is None or not iso or not isinstance(value, datetime) or value.utcoffset() is None:
            return _DATETIME.to_representation(value)
        try:
            text = value.astimezone(zone).isoformat()
        except OverflowError:  # DRF's own error
            return _DATETIME.to_representation(value)
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return instant


def listed_documents(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``DocumentSerializer(many=True).data`` for ``values(*LISTING_COLUMNS)`` rows, without model instances.

    The listing's hot path: 50 documents through the nested serializers and their model instances cost ~9 ms of
    a ~13 ms call (bench/README.md, api.py). The dates go through DRF's own fields, the author's name and the hold
    through the models' own properties; tests/test_api_practitioner.py compares this with the serializer.
    """
    listed = []
    instant = _instants()
    for row in rows:
        if row["author_practitioner__rpps"] is None:
            rpps = name = profession = None
        else:
            rpps, profession = row["author_practitioner__rpps"], row["author_practitioner__profession__label_fr"]
            author = SimpleNamespace(
                title=row["author_practitioner__title"],
                first_name=row["author_practitioner__first_name"],
                last_name=row["author_practitioner__last_name"],
            )
            name = Practitioner.display_name.fget(author)  # type: ignore[attr-defined]  # the property's function
        held = SimpleNamespace(held_until=row["held_until"], hold_released_at=row["hold_released_at"])
        listed.append(
            {
                "id": row["id"],
                "title": row["title"],
                "type": {
                    "code": row["document_type__code"],
                    "system": row["document_type__code_system"],
                    "label": row["document_type__label_fr"],
                    "class_code": row["document_type__class_code"],
                },
                "author": {"kind": row["author_kind"], "rpps": rpps, "name": name, "profession": profession},
                "care_date": _date(row["care_date"]),
                "deposited_at": instant(row["deposited_at"]),
                "content_type": row["content_type"],
                "size": row["size"],
                "sha256": row["sha256"],
                "held_from_patient": Document.is_held.fget(held),  # type: ignore[attr-defined]  # the property's function
                "minors_secret": row["hidden_from_representatives"],
            }
        )
    return listed


class DocumentFilterSerializer(serializers.Serializer):
    type = serializers.CharField(required=False, max_length=20, help_text=_("Code du type (JDV_J66)."))
    document_class = serializers.CharField(required=False, max_length=2, help_text=_("Code de classe (JDV_J57)."))
    date_from = serializers.DateField(required=False, help_text=_("Date des soins, à partir de."))
    date_to = serializers.DateField(required=False, help_text=_("Date des soins, jusqu'au."))


class DepositSerializer(serializers.Serializer):
    """A10 (with A8 ``hold`` and A9 ``minors_secret``), as multipart/form-data."""

    file = serializers.FileField()
    document_type = serializers.CharField(max_length=20)
    title = serializers.CharField(max_length=200)
    care_date = serializers.DateField(required=False, allow_null=True, default=None)
    hold = serializers.BooleanField(default=False)
    minors_secret = serializers.BooleanField(default=False)


class IdentityDepositSerializer(DepositSerializer, IdentityTraitsSerializer):
    """A10 by identity traits, without opening the record (blocked practitioners too, A5)."""

    birth_name = serializers.CharField(max_length=100)


class DepositReceiptSerializer(serializers.Serializer):
    """The answer to a deposit by identity traits: ``confirmed`` or ``received``.

    ``confirmed``: deposited, the patient is named. ``received``: the same answer whether or not an open profile
    had exactly these traits (A5, no oracle).
    """

    status = serializers.ChoiceField(choices=["confirmed", "received"])
    message = serializers.CharField()
    patient = PatientSerializer(required=False)
    document = DocumentSerializer(required=False)


class ActivitySerializer(serializers.Serializer):
    """T3: one of the practitioner's own actions. Refused attempts name no patient (A5)."""

    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    action = serializers.CharField()
    mode = serializers.CharField()
    outcome = serializers.CharField()
    patient_name = serializers.CharField(allow_blank=True)
    document_id = serializers.IntegerField(allow_null=True)
