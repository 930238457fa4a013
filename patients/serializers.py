"""Request and response bodies of the patient API (``patients.api``): validation and shape only."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from plumbing.api_shapes import DocumentMetadataSerializer
from records.models import Profile


class PractitionerSerializer(serializers.Serializer):
    rpps = serializers.CharField()
    name = serializers.CharField(source="display_name")
    profession = serializers.CharField(source="profession.label_fr")


class ProfileSerializer(serializers.Serializer):
    """A profile the user manages (their own, or a minor's as legal representative, L10), with its settings."""

    id = serializers.IntegerField()
    first_names = serializers.CharField()
    birth_name = serializers.CharField()
    usual_name = serializers.CharField()
    birth_date = serializers.DateField()
    state = serializers.CharField()
    own = serializers.BooleanField(help_text=_("Faux pour le profil d'un mineur que vous représentez."))
    treating_doctor = PractitionerSerializer(allow_null=True)
    emergency_access_opt_out = serializers.BooleanField()
    preferred_channel = serializers.CharField()
    new_document_notices = serializers.BooleanField()
    masked_categories = serializers.ListField(child=serializers.CharField())


class PatientDocumentSerializer(DocumentMetadataSerializer):
    """A document as the patient sees it (holds and the minor's secret already applied by the door, A8, A9)."""

    masked = serializers.BooleanField(source="is_masked", help_text=_("A4 : masqué aux professionnels."))
    category_masked = serializers.BooleanField(help_text=_("A12 : sa catégorie est masquée."))
    own_upload = serializers.BooleanField(help_text=_("A10 : déposé par le patient, peut être supprimé."))


class PatientDocumentFilterSerializer(serializers.Serializer):
    type = serializers.CharField(required=False, max_length=20)
    document_class = serializers.CharField(required=False, max_length=2)
    author = serializers.CharField(required=False, max_length=11, help_text=_("« patient » ou un numéro RPPS."))
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)


class UploadSerializer(serializers.Serializer):
    """A10: one of the patient's own documents (``DOCPAT*`` types), as multipart/form-data."""

    file = serializers.FileField()
    document_type = serializers.CharField(max_length=20)
    title = serializers.CharField(max_length=200)
    care_date = serializers.DateField(required=False, allow_null=True, default=None)


class CategorySerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField(source="label_fr")  # type: ignore[assignment]  # a declared field, taken out of the class attributes by the metaclass
    masked = serializers.BooleanField()


class PractitionerRefSerializer(serializers.Serializer):
    rpps = serializers.RegexField(r"^\d{11}$", help_text=_("Numéro RPPS à 11 chiffres."))


class BlockSerializer(serializers.Serializer):
    practitioner = PractitionerSerializer()
    created_at = serializers.DateTimeField()


class LocatedPractitionerSerializer(PractitionerSerializer):
    """A practitioner with the town they practise in, to tell namesakes apart."""

    city = serializers.CharField(source="practice_city")


class PractitionerGrantSerializer(serializers.Serializer):
    """A right the patient gave a named practitioner.

    Either the treating doctor's rights (A4) or an occupational physician's authorisation (A3).
    """

    practitioner = LocatedPractitionerSerializer()
    granted_at = serializers.DateTimeField()


class EmergencyAccessSerializer(serializers.Serializer):
    opt_out = serializers.BooleanField(help_text=_("A7 : vrai pour refuser l'accès en urgence."))


class PreferencesSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Profile.Channel.choices)
    new_document_notices = serializers.BooleanField()


class NoticeSerializer(serializers.Serializer):
    """N1-N7: a notice sent (or to be sent) about the profile; no clinical content (N6)."""

    id = serializers.IntegerField()
    kind = serializers.CharField()
    channel = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    practitioner = PractitionerSerializer(allow_null=True)
    accesses = serializers.IntegerField(help_text=_("Nombre d'accès regroupés dans cet avis (N1)."))
    letter_id = serializers.IntegerField(allow_null=True)
