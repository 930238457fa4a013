"""Wire shapes both REST APIs share: the error body, a document's metadata and a trail entry (T3).

Plain serializers over attributes: they shape output only; what a caller may see is decided by the door.
"""

from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    # A declared field: DRF's serializer metaclass takes it out of the class attributes, so Serializer.fields
    # stays intact; the stubs see an override.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class ErrorSerializer(serializers.Serializer):
    """``{"error": {"code": "...", "message": "..."}}``: the shape of every error of the API."""

    error = ErrorDetailSerializer()


class DocumentTypeSerializer(serializers.Serializer):
    code = serializers.CharField()
    system = serializers.CharField(source="code_system")
    label = serializers.CharField(source="label_fr")  # type: ignore[assignment]  # a declared field, taken out of the class attributes by the metaclass
    class_code = serializers.CharField()


class AuthorSerializer(serializers.Serializer):
    kind = serializers.CharField(source="author_kind")
    rpps = serializers.CharField(source="author_practitioner.rpps", default=None, allow_null=True)
    name = serializers.CharField(source="author_practitioner.display_name", default=None, allow_null=True)
    profession = serializers.CharField(source="author_practitioner.profession.label_fr", default=None, allow_null=True)


class DocumentMetadataSerializer(serializers.Serializer):
    """What every reader of a document is shown about it; each side adds its own flags."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    type = DocumentTypeSerializer(source="document_type")
    author = AuthorSerializer(source="*")
    care_date = serializers.DateField()
    deposited_at = serializers.DateTimeField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()


class TrailEntrySerializer(serializers.Serializer):
    """T3: one entry of a profile's trail, as the patient and the treating doctor see it."""

    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor_kind = serializers.CharField()
    actor_name = serializers.CharField()
    actor_profession = serializers.CharField(allow_blank=True)
    action = serializers.CharField()
    mode = serializers.CharField()
    outcome = serializers.CharField()
    document_id = serializers.IntegerField(allow_null=True)
    justification = serializers.CharField(allow_blank=True)
