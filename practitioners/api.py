"""The practitioner API (``/api/v1/practitioner/``): the portal's journey for practice software, same door.

find a patient by identity traits (A11) -> open the record with the care-team attestation or in emergency
(A1, A7; traced and notified by ``open_record``) -> list the visible documents (A2, A4, A12; the door's SQL) ->
read one document's metadata, download its content (``open_document``, traced) -> deposit (A8-A10) -> release
a hold (A8); the treating doctor's patients and their trails (A6, T3); one's own activity (T3).

The patient travels as a *handle* (``access_control.handles``), never as a NIR or a bare profile id. Refusals
that would tell something about the patient are one 404 (``no_match``) with the generic message (A5, no
oracle); refusals about the request itself (attestation, justification, SAMU mode, the patient's emergency
opt-out, which comes after every rule that hides the profile) are a 403 with their own code.
"""

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import BasePagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from access_control import handles
from access_control.actions import do_deposit_document, do_release_hold
from access_control.api import (
    LookupThrottled,
    RecordListing,
    find_profile,
    may_see_trail,
    open_document,
    open_record,
    profiles_treated_by,
    visible_documents,
)
from access_control.queries import own_actions, trail_for_treating_doctor
from access_control.rules import GENERIC_REFUSAL, Action
from accounts.api_auth import PRACTITIONER, READ
from accounts.auth import client_address
from plumbing.api_errors import TOTAL, NeverCached, Pagination
from plumbing.api_shapes import ErrorSerializer, TrailEntrySerializer
from records.models import Profile
from records.storage import body_response

from .deposits import do_deposit_by_identity, document_options
from .models import Practitioner
from .serializers import (
    LISTING_COLUMNS,
    ActivitySerializer,
    DepositReceiptSerializer,
    DepositSerializer,
    DocumentFilterSerializer,
    DocumentSerializer,
    IdentityDepositSerializer,
    IdentityTraitsSerializer,
    OpenRecordSerializer,
    PatientSerializer,
    listed_documents,
)

MAX_ID = 2**63 - 1
TAG = "practitioner"
ERRORS = dict.fromkeys((400, 401, 403, 404, 409, 429), ErrorSerializer)
RECEIPT_MESSAGE = _(
    "Transmission enregistrée. Carnet ne confirme un dépôt que dans les dossiers que vous pouvez consulter : "
    "si un dossier ouvert correspond exactement à ces traits d'identité, le document y a été versé."
)


class NoMatch(exceptions.NotFound):
    """The one answer for an unknown, hidden or refused patient (A5, A11: no oracle)."""

    default_detail = GENERIC_REFUSAL
    default_code = "no_match"


class RecordNotOpened(exceptions.PermissionDenied):
    default_detail = _("Ouvrez d'abord le dossier (POST …/open/) : la liste des documents suit l'ouverture.")
    default_code = "record_not_opened"


class DocumentNotFound(exceptions.NotFound):
    default_detail = _("Ce document est introuvable.")
    default_code = "document_not_found"


def _patient_body(practitioner: Practitioner, profile: Profile, mode: str = "") -> dict[str, Any]:
    return {
        "handle": handles.issue(handles.practitioner_key(practitioner), profile.pk, mode),
        "first_names": profile.first_names,
        "birth_name": profile.birth_name,
        "usual_name": profile.usual_name,
        "birth_date": profile.birth_date,
        "sex": profile.sex,
        "opened_mode": mode,
    }


class PractitionerView(NeverCached, GenericAPIView):
    permission_classes = PRACTITIONER
    pagination_class: type[BasePagination] | None = None  # list views that page say so

    def handle(self, *, opened: bool = False) -> handles.Handle:
        practitioner = self.request.practitioner  # type: ignore[attr-defined]  # set by accounts.auth's permission
        handle = handles.read(handles.practitioner_key(practitioner), self.kwargs["handle"])
        if handle is None:
            raise NoMatch()
        if opened and not handle.is_open:
            raise RecordNotOpened()
        return handle

    def document_id(self) -> int:
        document_id = self.kwargs["document_id"]
        if document_id > MAX_ID:
            raise DocumentNotFound()
        return document_id


@extend_schema(tags=[TAG])
class PatientSearch(PractitionerView):
    """A11: find a patient by NIR and birth date (and birth name). Traced and throttled when it fails."""

    serializer_class = IdentityTraitsSerializer
    required_scope = READ  # a look-up, POST only to keep the NIR out of the URL

    @extend_schema(request=IdentityTraitsSerializer, responses={200: PatientSerializer, **ERRORS})
    def post(self, request):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            profile = find_profile(
                request.practitioner,
                nir=data.validated_data["nir"],
                birth_date=data.validated_data["birth_date"],
                birth_name=data.validated_data["birth_name"] or None,
                client_address=client_address(request),
            )
        except LookupThrottled as exc:
            raise exceptions.Throttled(wait=exc.retry_after, detail=exc.messages[0], code="lookup_throttled") from None
        if profile is None:
            raise NoMatch()
        return Response(PatientSerializer(_patient_body(request.practitioner, profile)).data)


@extend_schema(tags=[TAG])
class OpenRecord(PractitionerView):
    """A1, A7: open the record (traced, the patient notified, N1/N3). Returns the opened handle."""

    serializer_class = OpenRecordSerializer
    required_scope = READ  # consulting is reading (the same as FHIR's DocumentReference?patient=)

    @extend_schema(request=OpenRecordSerializer, responses={200: PatientSerializer, **ERRORS})
    def post(self, request, handle):
        found = self.handle()
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = Profile.objects.filter(pk=found.profile_id).first()
        if profile is None:
            raise NoMatch()
        mode = data.validated_data["mode"]
        decision = open_record(
            request.practitioner,
            profile,
            mode=mode,
            justification=data.validated_data["justification"],
            attests_care_team=data.validated_data["attests_care_team"],
            client_address=client_address(request),
        )
        if not decision.allowed:
            if decision.message == str(GENERIC_REFUSAL):
                raise NoMatch()
            raise exceptions.PermissionDenied(detail=decision.message, code=decision.reason)
        return Response(PatientSerializer(_patient_body(request.practitioner, profile, mode)).data)


_FILTERS = frozenset(DocumentFilterSerializer().fields)


@extend_schema(tags=[TAG])
class DocumentList(PractitionerView):
    """The documents this practitioner may see in the opened record (A2, A4, A12), newest first; deposit one."""

    serializer_class = DocumentSerializer
    pagination_class = Pagination
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return self.documents(*self.listing())

    def listing(self) -> tuple[handles.Handle, dict[str, Any]]:
        """The opened handle and the request's filters, checked (a 404, 403 or 400 otherwise)."""
        handle = self.handle(opened=True)
        params = self.request.query_params
        if not any(name in params for name in _FILTERS):  # the usual call: nothing to check (all optional)
            return handle, {}
        filters = DocumentFilterSerializer(data=params)
        filters.is_valid(raise_exception=True)
        return handle, filters.validated_data

    def documents(self, handle: handles.Handle, data: dict[str, Any]) -> QuerySet[Any]:
        """The door's listing of the opened record with the request's filters."""
        # Profile(pk=…): the door filters everything in SQL, the profile row itself is not needed (A5 included).
        practitioner = self.request.practitioner  # type: ignore[attr-defined]  # set by the IsPractitioner permission
        documents = visible_documents(practitioner, Profile(pk=handle.profile_id), mode=handle.mode)
        if data.get("type"):
            documents = documents.filter(document_type__code=data["type"])
        if data.get("document_class"):
            documents = documents.filter(document_type__class_code=data["document_class"])
        if data.get("date_from"):
            documents = documents.filter(care_date__gte=data["date_from"])
        if data.get("date_to"):
            documents = documents.filter(care_date__lte=data["date_to"])
        return documents

    @extend_schema(parameters=[DocumentFilterSerializer], responses={200: DocumentSerializer(many=True), **ERRORS})
    def get(self, request, handle):
        # Rows, not models: the same body as DocumentSerializer's (listed_documents), at a fraction of the cost.
        paginator = self.paginator
        assert isinstance(paginator, Pagination)  # pagination_class
        found, data = self.listing()

        def rows() -> QuerySet[Any]:
            return self.documents(found, data).values(*LISTING_COLUMNS)

        counted = None
        if not any(data.get(name) for name in ("type", "document_class", "date_from", "date_to")):
            # The whole record, the usual call: the page and its total from SQL compiled once.
            practitioner_id, profile_id, mode = request.practitioner.pk, found.profile_id, found.mode

            def counted(start: int, stop: int) -> list[dict[str, Any]]:
                return _PAGES.rows(practitioner_id, profile_id, mode, limit=stop - start, offset=start)

        page = paginator.paginate_rows(rows, request, self, counted=counted)
        assert page is not None  # page_size is always set
        return self.get_paginated_response(listed_documents(page))

    @extend_schema(request={"multipart/form-data": DepositSerializer}, responses={201: DocumentSerializer, **ERRORS})
    def post(self, request, handle):
        """A10: deposit to the found patient's record (opening it is not needed); A8 hold, A9 minor's secret."""
        found = self.handle()
        data = DepositSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = Profile.objects.filter(pk=found.profile_id).first()
        if profile is None:
            raise NoMatch()
        document = do_deposit_document(profile, actor=request.practitioner, **document_options(data.validated_data))
        return Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED)


# The unfiltered page and its total as ``Pagination.paginate_rows`` reads them, from SQL compiled once.
_PAGES = RecordListing(*LISTING_COLUMNS, total=TOTAL)


@extend_schema(tags=[TAG])
class DocumentDetail(PractitionerView):
    """One visible document's metadata, from the door's listing of the opened record.

    The listing was traced at the opening; the content download is traced on its own.
    """

    serializer_class = DocumentSerializer

    @extend_schema(responses={200: DocumentSerializer, **ERRORS})
    def get(self, request, handle, document_id):
        found = self.handle(opened=True)
        document = (
            visible_documents(request.practitioner, Profile(pk=found.profile_id), mode=found.mode)
            .filter(pk=self.document_id())
            .first()
        )
        if document is None:
            raise DocumentNotFound()
        return Response(DocumentSerializer(document).data)


@extend_schema(tags=[TAG])
class DocumentContent(PractitionerView):
    """The document's body (``open_document``: traced as an opening, T1). The content type is the document's."""

    @extend_schema(responses={(200, "*/*"): OpenApiTypes.BINARY, **ERRORS})
    def get(self, request, handle, document_id):
        found = self.handle(opened=True)
        # Looked for in the opened record only (its one shard on Citus): another record's document is an unknown id.
        document = open_document(
            request.practitioner,
            self.document_id(),
            mode=found.mode,
            client_address=client_address(request),
            profile_id=found.profile_id,
        )
        if document is None or document.profile_id != found.profile_id:
            raise DocumentNotFound()
        return body_response(document)


@extend_schema(tags=[TAG])
class ReleaseHold(PractitionerView):
    """A8: the author or the treating doctor makes a held document visible to the patient."""

    @extend_schema(request=None, responses={200: DocumentSerializer, **ERRORS})
    def post(self, request, handle, document_id):
        found = self.handle(opened=True)
        document = (
            visible_documents(request.practitioner, Profile(pk=found.profile_id), mode=found.mode)
            .filter(pk=self.document_id())
            .first()
        )
        if document is None:
            raise DocumentNotFound()
        document = do_release_hold(document, actor=request.practitioner)
        return Response(DocumentSerializer(document).data)


@extend_schema(tags=[TAG])
class IdentityDeposit(PractitionerView):
    """Deposit by identity traits without opening the record (A10).

    The answer names the patient only when the look-up would have found them; otherwise a receipt worded the same
    whether deposited or not (A5).
    """

    serializer_class = IdentityDepositSerializer
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": IdentityDepositSerializer},
        responses={201: DepositReceiptSerializer, 202: DepositReceiptSerializer, **ERRORS},
    )
    def post(self, request):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            outcome = do_deposit_by_identity(
                request.practitioner,
                nir=values["nir"],
                birth_date=values["birth_date"],
                birth_name=values["birth_name"],
                client_address=client_address(request),
                **document_options(values),
            )
        except LookupThrottled as exc:
            raise exceptions.Throttled(wait=exc.retry_after, detail=exc.messages[0], code="lookup_throttled") from None
        if not outcome.confirmed:
            body: dict[str, object] = {"status": "received", "message": str(RECEIPT_MESSAGE)}
            return Response(DepositReceiptSerializer(body).data, status=status.HTTP_202_ACCEPTED)
        assert outcome.profile is not None  # a confirmed deposit names its profile
        body = {
            "status": "confirmed",
            "message": str(_("Document déposé.")),
            "patient": _patient_body(request.practitioner, outcome.profile),
            "document": outcome.document,
        }
        return Response(DepositReceiptSerializer(body).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=[TAG])
class MyPatients(PractitionerView):
    """A6: the patients who declared this practitioner their treating doctor (handles to open their records)."""

    serializer_class = PatientSerializer
    pagination_class = Pagination

    @extend_schema(responses={200: PatientSerializer(many=True), **ERRORS})
    def get(self, request):
        profiles = profiles_treated_by(request.practitioner).only(
            "pk", "first_names", "birth_name", "usual_name", "birth_date", "sex"
        )
        page = self.paginate_queryset(profiles)
        assert page is not None  # pagination_class is set
        body = [_patient_body(request.practitioner, profile) for profile in page]
        return self.get_paginated_response(PatientSerializer(body, many=True).data)


@extend_schema(tags=[TAG])
class PatientTrail(PractitionerView):
    """A6, T3: the treating doctor sees the whole trail of the profile; anyone else: 404 (no_match)."""

    serializer_class = TrailEntrySerializer
    pagination_class = Pagination

    @extend_schema(responses={200: TrailEntrySerializer(many=True), **ERRORS})
    def get(self, request, handle):
        found = self.handle()
        profile = Profile.objects.filter(pk=found.profile_id).first()
        if profile is None or not may_see_trail(request.practitioner, profile):
            raise NoMatch()
        page = self.paginate_queryset(trail_for_treating_doctor(request.practitioner, profile))
        return self.get_paginated_response(TrailEntrySerializer(page, many=True).data)


@extend_schema(tags=[TAG])
class Activity(PractitionerView):
    """The practitioner's own actions, newest first (T3).

    Refused attempts name no patient; deposits name none (a deposit by identity traits reveals nothing here
    either, A5).
    """

    serializer_class = ActivitySerializer
    pagination_class = Pagination

    @extend_schema(responses={200: ActivitySerializer(many=True), **ERRORS})
    def get(self, request):
        page = self.paginate_queryset(own_actions(request.practitioner))
        assert page is not None  # pagination_class is set
        rows = list(page)
        named = {row["shown_profile_id"] for row in rows if row["shown_profile_id"] and row["action"] != Action.DEPOSIT}
        names = (
            {
                profile.pk: profile.display_name
                for profile in Profile.objects.filter(pk__in=named).only(
                    "pk", "first_names", "birth_name", "usual_name"
                )
            }
            if named
            else {}
        )
        body = []
        for row in rows:
            deposit = row["action"] == Action.DEPOSIT
            body.append(
                {
                    "id": row["id"],
                    "at": row["at"],
                    "action": row["action"],
                    "mode": row["mode"],
                    "outcome": "transmitted" if deposit else row["outcome"],
                    "patient_name": "" if deposit else names.get(row["shown_profile_id"], ""),
                    "document_id": None if deposit else row["shown_document_id"],
                }
            )
        return self.get_paginated_response(ActivitySerializer(body, many=True).data)
