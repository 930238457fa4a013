"""The patient API (``/api/v1/patient/``): the patient portal's features for apps, through the same door.

Every URL names a profile the user manages (``profiles_managed_by``: their own, or a minor's as legal
representative, L10); any other id answers 404. Documents come from ``documents_visible_to_patient`` (holds
A8 and the minor's secret A9 applied in SQL); a document id that is not the profile's is traced as a denied
attempt and answers 404, as in the portal. Every change is an action (``access_control.actions``,
``records.account_actions``) with its own checks (L4: masking, blocking and granting the treating doctor's
rights need an activated profile). Authentication: a portal session (second factor passed) or a token
(``access_control.tokens``).

Sensitive operations (``STEP_UP``: lifting a block, changing the emergency opt-out or where notices go, declaring
the treating doctor, granting the treating doctor's rights or an occupational authorisation) need a fresh step-up
re-check on every door. A bearer token has no interactive step-up, so it is refused with ``403
step_up_required``: such changes are made in the portal, or by an app using a portal session confirmed within
``CARNET_STEP_UP_SECONDS``. Withdrawing rights, blocking and masking only narrow access: no step-up.
"""

from typing import Any, cast

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import BasePagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from access_control.actions import (
    do_delete_own_document,
    do_deposit_document,
    do_mask_category,
    do_mask_document,
    do_unmask_category,
    do_unmask_document,
)
from access_control.api import documents_visible_to_patient, profiles_managed_by
from access_control.models import (
    ApiToken,
    CategoryMask,
    DocumentCategory,
)
from access_control.queries import trail_for_patient
from accounts.api_auth import PATIENT
from accounts.auth import client_address
from notifications.models import Letter
from notifications.queries import letter_pdf_for_patient, notices_for_profile
from patients.portal import step_up_is_fresh
from patients.serializers import (
    CategorySerializer,
    NoticeSerializer,
    PatientDocumentFilterSerializer,
    PatientDocumentSerializer,
    PreferencesSerializer,
    ProfileSerializer,
    UploadSerializer,
)
from plumbing.api_errors import NeverCached, Pagination
from plumbing.api_shapes import ErrorSerializer, TrailEntrySerializer
from records.account_actions import do_set_notice_preferences, do_trace_denied_document, do_trace_patient_read
from records.models import Document, Profile, User
from records.storage import body_response

MAX_ID = 2**63 - 1
TAG = "patient"
ERRORS = dict.fromkeys((400, 401, 403, 404, 409, 429), ErrorSerializer)


class ProfileNotFound(exceptions.NotFound):
    default_detail = _("Ce profil est introuvable.")
    default_code = "profile_not_found"


class DocumentNotFound(exceptions.NotFound):
    default_detail = _("Ce document est introuvable.")
    default_code = "document_not_found"


class PractitionerNotFound(exceptions.NotFound):
    default_detail = _("Aucun professionnel de santé n'a ce numéro RPPS.")
    default_code = "practitioner_not_found"


def masked_type_ids(profile) -> set[int]:
    """A12: the document types covered by the profile's masked categories (one query)."""
    return {
        type_id
        for type_id in CategoryMask.objects.filter(profile=profile).values_list("category__document_types", flat=True)
        if type_id is not None
    }


def _profile_body(profile: Profile, user: User | AnonymousUser) -> dict[str, Any]:
    return {
        "id": profile.pk,
        "first_names": profile.first_names,
        "birth_name": profile.birth_name,
        "usual_name": profile.usual_name,
        "birth_date": profile.birth_date,
        "state": profile.state,
        "own": profile.user_id == user.pk,
        "treating_doctor": profile.treating_doctor,
        "emergency_access_opt_out": profile.emergency_access_opt_out,
        "preferred_channel": profile.preferred_channel,
        "new_document_notices": profile.new_document_notices,
        "masked_categories": sorted(profile._masked_categories),  # type: ignore[attr-defined]  # set below
    }


def _managed(user: User | AnonymousUser) -> QuerySet[Profile]:
    return profiles_managed_by(user).select_related("treating_doctor__profession")


def _with_masked_categories(profiles: list[Profile]) -> list[Profile]:
    masks: dict[int, set[str]] = {profile.pk: set() for profile in profiles}
    for profile_id, code in CategoryMask.objects.filter(profile_id__in=masks).values_list(
        "profile_id", "category__code"
    ):
        masks[profile_id].add(code)
    for profile in profiles:
        profile._masked_categories = masks[profile.pk]  # type: ignore[attr-defined]  # read by the body above
    return profiles


class StepUpRequired(exceptions.PermissionDenied):
    default_detail = _("Confirmez votre identité dans le portail (mot de passe ou code) avant cette opération.")
    default_code = "step_up_required"


TOKEN_STEP_UP_MESSAGE = _(
    "Un jeton d'API ne suffit pas pour cette opération sensible : faites-la dans le portail, après avoir "
    "confirmé votre identité."
)


def require_step_up(request) -> None:
    """A sensitive operation: a portal session whose step-up re-check is fresh, never a bearer token."""
    if isinstance(request.auth, ApiToken):
        raise StepUpRequired(TOKEN_STEP_UP_MESSAGE)
    if not step_up_is_fresh(request._request):
        raise StepUpRequired()


class PatientView(NeverCached, GenericAPIView):
    permission_classes = PATIENT
    pagination_class: type[BasePagination] | None = None  # list views that page say so
    step_up_methods: frozenset[str] = frozenset()  # the sensitive operations of this view (require_step_up)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method in self.step_up_methods:
            require_step_up(request)

    def profile(self) -> Profile:
        profile_id = self.kwargs["profile_id"]
        profile = _managed(self.request.user).filter(pk=profile_id).first() if profile_id <= MAX_ID else None
        if profile is None:
            raise ProfileNotFound()
        return profile

    def profile_response(self) -> Response:
        profile = _with_masked_categories([self.profile()])[0]
        return Response(ProfileSerializer(_profile_body(profile, self.request.user)).data)

    def documents(self, profile: Profile):
        return documents_visible_to_patient(self.request.user, profile)

    def document(self, profile: Profile) -> Document:
        """One document of the profile as the user sees it, or 404 traced as a denied attempt (T1)."""
        document_id = self.kwargs["document_id"]
        document = self.documents(profile).filter(pk=document_id).first() if document_id <= MAX_ID else None
        if document is None:
            do_trace_denied_document(
                profile,
                document_id if document_id <= MAX_ID else None,
                actor=cast(User, self.request.user),  # authenticated: the view's permissions say so
                client_address=client_address(self.request),
            )
            raise DocumentNotFound()
        return document

    def document_body(self, profile: Profile, document: Document) -> Document:
        return _document_body(document, masked_type_ids(profile))


def _document_body(document: Document, masked_types: set[int]) -> Document:
    # Attributes for PatientDocumentSerializer, not model fields.
    document.category_masked = document.document_type_id in masked_types  # type: ignore[attr-defined]
    document.own_upload = document.author_kind == Document.AuthorKind.PATIENT  # type: ignore[attr-defined]
    return document


@extend_schema(tags=[TAG])
class Profiles(PatientView):
    """L10: the user's own profile first, then the minors' profiles they manage."""

    serializer_class = ProfileSerializer

    @extend_schema(responses={200: ProfileSerializer(many=True), **ERRORS})
    def get(self, request):
        profiles = _with_masked_categories(list(_managed(request.user)))
        return Response(ProfileSerializer([_profile_body(p, request.user) for p in profiles], many=True).data)


@extend_schema(tags=[TAG])
class ProfileDetail(PatientView):
    """One managed profile and its settings (treating doctor, emergency opt-out, notices, masked categories)."""

    serializer_class = ProfileSerializer

    @extend_schema(responses={200: ProfileSerializer, **ERRORS})
    def get(self, request, profile_id):
        return self.profile_response()


@extend_schema(tags=[TAG])
class Documents(PatientView):
    """The profile's documents as the user may see them (A8, A9, A10), newest first; upload one (A10)."""

    serializer_class = PatientDocumentSerializer
    pagination_class = Pagination
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        parameters=[PatientDocumentFilterSerializer], responses={200: PatientDocumentSerializer(many=True), **ERRORS}
    )
    def get(self, request, profile_id):
        profile = self.profile()
        filters = PatientDocumentFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        documents = self.documents(profile)
        if data.get("type"):
            documents = documents.filter(document_type__code=data["type"])
        if data.get("document_class"):
            documents = documents.filter(document_type__class_code=data["document_class"])
        if data.get("author") == "patient":
            documents = documents.filter(author_kind=Document.AuthorKind.PATIENT)
        elif data.get("author"):
            documents = documents.filter(author_practitioner__rpps=data["author"])
        if data.get("date_from"):
            documents = documents.filter(care_date__gte=data["date_from"])
        if data.get("date_to"):
            documents = documents.filter(care_date__lte=data["date_to"])
        page = self.paginate_queryset(documents)
        assert page is not None  # pagination_class is set
        masked = masked_type_ids(profile)
        return self.get_paginated_response(
            PatientDocumentSerializer([_document_body(d, masked) for d in page], many=True).data
        )

    @extend_schema(
        request={"multipart/form-data": UploadSerializer}, responses={201: PatientDocumentSerializer, **ERRORS}
    )
    def post(self, request, profile_id):
        profile = self.profile()
        data = UploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        document = do_deposit_document(
            profile,
            actor=request.user,
            fileobj=values["file"],
            document_type=values["document_type"],
            title=values["title"],
            care_date=values["care_date"],
            original_name=values["file"].name or "",
        )
        return Response(
            PatientDocumentSerializer(self.document_body(profile, document)).data, status=status.HTTP_201_CREATED
        )


@extend_schema(tags=[TAG])
class DocumentDetail(PatientView):
    """One document's metadata; DELETE removes one's own upload (A10; practitioners' ones can be masked)."""

    serializer_class = PatientDocumentSerializer

    @extend_schema(responses={200: PatientDocumentSerializer, **ERRORS})
    def get(self, request, profile_id, document_id):
        profile = self.profile()
        return Response(PatientDocumentSerializer(self.document_body(profile, self.document(profile))).data)

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, profile_id, document_id):
        profile = self.profile()
        do_delete_own_document(self.document(profile), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=[TAG])
class DocumentContent(PatientView):
    """The document's body, traced as the patient's reading (T1)."""

    @extend_schema(responses={(200, "*/*"): OpenApiTypes.BINARY, **ERRORS})
    def get(self, request, profile_id, document_id):
        profile = self.profile()
        document = self.document(profile)
        do_trace_patient_read(
            profile, document, actor=request.user, download=True, client_address=client_address(request)
        )
        return body_response(document)


@extend_schema(tags=[TAG])
class DocumentMask(PatientView):
    """Mask a document from practitioners (POST) or unmask it (DELETE) (A4).

    The author, the treating doctor and those granted the treating doctor's rights still see it. Idempotent. Needs
    an activated profile (L4).
    """

    serializer_class = PatientDocumentSerializer

    @extend_schema(request=None, responses={200: PatientDocumentSerializer, **ERRORS})
    def post(self, request, profile_id, document_id):
        profile = self.profile()
        document = do_mask_document(self.document(profile), actor=request.user)
        return Response(PatientDocumentSerializer(self.document_body(profile, document)).data)

    @extend_schema(request=None, responses={200: PatientDocumentSerializer, **ERRORS})
    def delete(self, request, profile_id, document_id):
        profile = self.profile()
        document = do_unmask_document(self.document(profile), actor=request.user)
        return Response(PatientDocumentSerializer(self.document_body(profile, document)).data)


@extend_schema(tags=[TAG])
class Categories(PatientView):
    """A12: the maskable categories and whether each is masked for this profile."""

    serializer_class = CategorySerializer

    @extend_schema(responses={200: CategorySerializer(many=True), **ERRORS})
    def get(self, request, profile_id):
        profile = self.profile()
        masked = set(CategoryMask.objects.filter(profile=profile).values_list("category_id", flat=True))
        categories = list(DocumentCategory.objects.order_by("label_fr"))
        for category in categories:
            category.masked = category.pk in masked  # type: ignore[attr-defined]  # for the serializer, not a field
        return Response(CategorySerializer(categories, many=True).data)


@extend_schema(tags=[TAG])
class CategoryMaskView(PatientView):
    """A12: POST masks a whole category, present and future documents; DELETE unmasks it. Idempotent."""

    serializer_class = CategorySerializer

    def category(self) -> DocumentCategory:
        category = DocumentCategory.objects.filter(code=self.kwargs["code"]).first()
        if category is None:
            raise exceptions.NotFound(_("Catégorie inconnue."), code="category_not_found")
        return category

    @extend_schema(request=None, responses={200: CategorySerializer, **ERRORS})
    def post(self, request, profile_id, code):
        profile, category = self.profile(), self.category()
        do_mask_category(profile, category, actor=request.user)
        category.masked = True  # type: ignore[attr-defined]  # for the serializer, not a field
        return Response(CategorySerializer(category).data)

    @extend_schema(request=None, responses={200: CategorySerializer, **ERRORS})
    def delete(self, request, profile_id, code):
        profile, category = self.profile(), self.category()
        do_unmask_category(profile, category, actor=request.user)
        category.masked = False  # type: ignore[attr-defined]  # for the serializer, not a field
        return Response(CategorySerializer(category).data)


@extend_schema(tags=[TAG])
class Preferences(PatientView):
    """N2, N7: notices by e-mail (verified address only) or by post, and new-document notices.

    Changing the channel changes where the consultation notices go: sensitive (step-up); the new-document switch
    is not.
    """

    serializer_class = PreferencesSerializer

    @extend_schema(request=PreferencesSerializer, responses={200: ProfileSerializer, **ERRORS})
    def put(self, request, profile_id):
        profile = self.profile()
        data = PreferencesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["channel"] != profile.preferred_channel:
            require_step_up(request)
        do_set_notice_preferences(
            profile,
            channel=data.validated_data["channel"],
            new_document_notices=data.validated_data["new_document_notices"],
            actor=request.user,
        )
        return self.profile_response()


@extend_schema(tags=[TAG])
class Trail(PatientView):
    """The profile's trail, newest first: who (name, profession), when, what, mode, outcome (T3).

    A legal representative does not see entries about documents under the minor's secret (A9).
    """

    serializer_class = TrailEntrySerializer
    pagination_class = Pagination

    @extend_schema(responses={200: TrailEntrySerializer(many=True), **ERRORS})
    def get(self, request, profile_id):
        profile = self.profile()
        entries = trail_for_patient(profile, as_legal_representative=profile.user_id != request.user.pk)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(TrailEntrySerializer(page, many=True).data)


@extend_schema(tags=[TAG])
class Notices(PatientView):
    """N1-N7: the notices about the profile, newest first; a letter's PDF is at ``letters/{id}/``."""

    serializer_class = NoticeSerializer
    pagination_class = Pagination

    @extend_schema(responses={200: NoticeSerializer(many=True), **ERRORS})
    def get(self, request, profile_id):
        profile = self.profile()
        page = self.paginate_queryset(notices_for_profile(profile))
        assert page is not None  # pagination_class is set
        body = [
            {
                "id": notice.pk,
                "kind": notice.kind,
                "channel": notice.channel,
                "status": notice.status,
                "created_at": notice.created_at,
                "sent_at": notice.sent_at,
                "practitioner": notice.practitioner,
                "accesses": len(notice.trail_entries.all()),
                "letter_id": getattr(getattr(notice, "letter", None), "pk", None),
            }
            for notice in page
        ]
        return self.get_paginated_response(NoticeSerializer(body, many=True).data)


@extend_schema(tags=[TAG])
class LetterPdf(PatientView):
    """N4: one letter's PDF, for its patient (or the legal representative managing the profile)."""

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY, **ERRORS})
    def get(self, request, profile_id, letter_id):
        self.profile()
        try:
            letter = letter_pdf_for_patient(request.user, letter_id if letter_id <= MAX_ID else 0)
        except Letter.DoesNotExist:
            raise exceptions.NotFound(_("Ce courrier est introuvable."), code="letter_not_found") from None
        response = HttpResponse(letter.content, content_type=letter.content_type)
        response["Content-Disposition"] = f'inline; filename="{letter.filename}"'
        return response
