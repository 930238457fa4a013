"""The FHIR R4 interface (``/fhir/``), for practice software and patient apps.

It goes through the same door as the portals and the REST API.

Practitioners: ``Patient?identifier=<NIR OID>|<NIR>&birthdate=…`` is the identity look-up (A11, both traits
required; traced and throttled when it fails); the Patient's id is a handle (``access_control.handles``).
``DocumentReference?patient=<id>`` opens the record in normal mode — the request is the care-team attestation
(A1) — which writes the trail entry and the consultation notice (T1, N1) exactly as the portal does, then lists
what the door lets them see (A2, A4, A12); a patient id opened in emergency through the REST API keeps its mode.
``DocumentReference/<id>`` and ``Binary/<id>`` open one document (``open_document``: traced, normal mode);
``POST DocumentReference`` deposits (A10, with TRE_A07 ``INVISIBLE_PATIENT`` for a hold, A8, and
``INVISIBLE_REPRESENTANTS_LEGAUX`` for the minor's secret, A9). ``AuditEvent?patient=<id>``: the treating
doctor's view of the trail (A6, T3).

Patients: the same resources over the profiles they manage (L10), with their own Patient ids; documents as the
patient sees them (A8, A9); their trail (T3).
"""

import base64
import binascii
import io
from datetime import date
from typing import cast

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from access_control import handles
from access_control.actions import do_deposit_document
from access_control.api import (
    LookupThrottled,
    documents_visible_to_patient,
    find_profile,
    may_see_trail,
    open_document,
    open_record,
    profiles_managed_by,
    visible_documents,
)
from access_control.models import AccessMode
from access_control.queries import trail_for_patient, trail_for_treating_doctor
from access_control.rules import GENERIC_REFUSAL
from accounts.api_auth import READ, TokenScope
from accounts.auth import client_address
from fhir_server import resources
from fhir_server.http import (
    AlwaysFHIR,
    FHIRParser,
    FHIRRenderer,
    IsPractitionerOrPatient,
    PlainJSONParser,
    exception_handler,
)
from plumbing.api_errors import NeverCached
from practitioners.models import Practitioner
from records.account_actions import do_trace_patient_read
from records.identifiers import normalize_nir
from records.models import Profile, User
from records.storage import body_response, read_body

DEFAULT_COUNT = 50
MAX_COUNT = 100
MAX_ID = 2**63 - 1


class Unprocessable(exceptions.APIException):
    status_code = 400
    default_code = "invalid"


class NoMatch(exceptions.NotFound):
    default_detail = GENERIC_REFUSAL
    default_code = "no_match"


class ResourceNotFound(exceptions.NotFound):
    default_detail = _("Ressource introuvable.")
    default_code = "not_found"


def _bad(message, code="invalid"):
    return Unprocessable(detail=message, code=code)


class FHIRView(NeverCached, APIView):
    renderer_classes = [FHIRRenderer]
    parser_classes = [FHIRParser, PlainJSONParser]
    content_negotiation_class = AlwaysFHIR
    permission_classes = [IsPractitionerOrPatient, TokenScope]

    def get_exception_handler(self):
        return exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Checked before any handler runs, so before any opening, trail entry or notice: PostgreSQL refuses NUL
        # in text (a DataError, a 500 after the record was opened), and no valid parameter contains one.
        _reject_nul(request.query_params)

    # --- who is asking -------------------------------------------------------------------------------

    @property
    def practitioner(self) -> Practitioner | None:
        return getattr(self.request, "practitioner", None)

    def actor_key(self) -> str:
        practitioner = self.practitioner
        return handles.practitioner_key(practitioner) if practitioner else handles.user_key(self.request.user)

    def base(self) -> str:
        return self.request.build_absolute_uri("/fhir/")

    def patient_handle(self, value: str) -> tuple[handles.Handle, Profile]:
        """The profile behind a Patient id given by this actor: a practitioner's handle, or a managed profile."""
        handle = handles.read(self.actor_key(), (value or "").removeprefix("Patient/"))
        if handle is None:
            raise NoMatch()
        if self.practitioner is None:
            profile = profiles_managed_by(self.request.user).filter(pk=handle.profile_id).first()
        else:
            profile = Profile.objects.filter(pk=handle.profile_id).first()
        if profile is None:
            raise NoMatch()
        return handle, profile

    def paging(self) -> tuple[int, int]:
        """``_count`` and ``page``, checked (a handler calls this before it opens anything)."""
        count = _integer(self.request.query_params.get("_count"), DEFAULT_COUNT, 1, MAX_COUNT, "_count")
        number = _integer(self.request.query_params.get("page"), 1, 1, 10**6, "page")
        return count, number

    def page(self, queryset, to_resource) -> Response:
        """A searchset Bundle of one page (``_count``, ``page``), with its total and links."""
        count, number = self.paging()
        total = queryset.count()
        items = list(queryset[(number - 1) * count : number * count])
        links = {"self": self.request.build_absolute_uri()}
        if number * count < total:
            query = self.request.query_params.copy()
            query["page"] = str(number + 1)
            query["_count"] = str(count)
            links["next"] = self.request.build_absolute_uri(f"{self.request.path}?{query.urlencode()}")
        return Response(
            resources.bundle([to_resource(item) for item in items], total=total, base=self.base(), links=links)
        )


def _reject_nul(params) -> None:
    for key, values in params.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            raise _bad(_("Caractère nul interdit dans les paramètres."), "invalid_character")


def _has_nul(data) -> bool:
    """Whether a NUL character is in any key or string of parsed JSON (iterative: the parser bounded its depth)."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _integer(value, default: int, low: int, high: int, name: str) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise _bad(_("Le paramètre %(name)s doit être un entier.") % {"name": name}) from None
    if not low <= number <= high:
        raise _bad(_("Le paramètre %(name)s est hors limites.") % {"name": name})
    return number


def _token(value: str) -> tuple[str | None, str]:
    """A FHIR token search value: ``system|code`` or ``code``."""
    if "|" in value:
        system, _sep, code = value.partition("|")
        return system or None, code
    return None, value


_DATE_PREFIXES = {"eq": "", "ge": "__gte", "le": "__lte", "gt": "__gt", "lt": "__lt"}


def _date_filters(values: list[str], field: str) -> dict:
    filters = {}
    for value in values:
        prefix = value[:2] if value[:2].isalpha() else "eq"
        if prefix not in _DATE_PREFIXES:
            raise _bad(_("Préfixe de date non pris en charge : %(prefix)s.") % {"prefix": prefix})
        raw = value[2:] if value[:2].isalpha() else value
        try:
            day = date.fromisoformat(raw[:10])
        except ValueError:
            raise _bad(_("Date invalide : utilisez AAAA-MM-JJ.")) from None
        filters[f"{field}{_DATE_PREFIXES[prefix]}"] = day
    return filters


class Metadata(FHIRView):
    """The CapabilityStatement: what this server offers (no authentication needed)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(exclude=True)
    def get(self, request):
        return Response(resources.capability_statement(self.base()))


class PatientSearch(FHIRView):
    """A11: find a patient by INS and birth date, preferably with ``POST /fhir/Patient/_search``.

    The form-encoded body ``identifier=urn:oid:1.2.250.1.213.1.4.8|<NIR>&birthdate=YYYY-MM-DD`` is the way to
    search: no NIR or birth date in a URL, a proxy's or server's log. ``GET /fhir/Patient?…`` takes the same
    parameters and gives the same answer.
    """

    parser_classes = [FormParser]
    required_scope = READ  # POST _search is a search (accounts.api_auth.required_scope)

    @extend_schema(exclude=True)
    def get(self, request):
        return self.search(request.query_params)

    @extend_schema(exclude=True)
    def post(self, request):
        if not request.path.endswith("/_search"):  # POST /fhir/Patient would be a create: not offered
            raise exceptions.MethodNotAllowed(request.method)
        _reject_nul(request.data)
        # FHIR: parameters may come in the URL and the body of a POST _search; the body wins.
        params = request.query_params.copy()
        for key, values in request.data.lists():
            params.setlist(key, values)
        return self.search(params, self_link=request.build_absolute_uri(request.path))

    def search(self, params, *, self_link: str | None = None) -> Response:
        request = self.request
        identifier = params.get("identifier", "")
        birthdate = params.get("birthdate", "")
        if not identifier or not birthdate:
            raise _bad(
                _("La recherche de patient exige identifier (NIR) et birthdate."), "identifier_and_birthdate_required"
            )
        system, nir = _token(identifier)
        if system != resources.NIR_SYSTEM:
            raise _bad(_("Identifiant attendu : %(system)s|<NIR>.") % {"system": resources.NIR_SYSTEM})
        birth = _date_filters([birthdate], "birth_date")
        if list(birth) != ["birth_date"]:
            raise _bad(_("La date de naissance doit être exacte (AAAA-MM-JJ)."))
        birth_date = birth["birth_date"]
        if self.practitioner is not None:
            try:
                profile = find_profile(
                    self.practitioner, nir=nir, birth_date=birth_date, client_address=client_address(request)
                )
            except LookupThrottled as exc:
                raise exceptions.Throttled(detail=exc.messages[0], code="lookup_throttled") from None
            found = [profile] if profile is not None else []
        else:
            found = list(profiles_managed_by(request.user).filter(nir=normalize_nir(nir), birth_date=birth_date))
        patients = [resources.patient(p, handles.issue(self.actor_key(), p.pk)) for p in found]
        links = {"self": self_link or request.build_absolute_uri()}
        return Response(resources.bundle(patients, total=len(patients), base=self.base(), links=links))


def _deposit_fields(body: dict) -> dict:
    """What ``do_deposit_document`` needs, from a DocumentReference body (or a 400 saying what is missing)."""
    if not isinstance(body, dict) or body.get("resourceType") != "DocumentReference":
        raise _bad(_("Le corps doit être une ressource DocumentReference."))
    if _has_nul(body):
        raise _bad(_("Caractère nul interdit dans la ressource."), "invalid_character")
    try:
        codings = body["type"]["coding"]
        type_code = next(c["code"] for c in codings if c.get("code"))
        attachment = body["content"][0]["attachment"]
        data = base64.b64decode(attachment["data"], validate=True)
        subject = body["subject"]["reference"]
    except (KeyError, IndexError, TypeError, StopIteration, binascii.Error, ValueError):
        raise _bad(
            _("DocumentReference incomplet : subject, type.coding, content[0].attachment.data (base64) requis.")
        ) from None
    title = body.get("description") or attachment.get("title") or ""
    care_date = None
    start = ((body.get("context") or {}).get("period") or {}).get("start")
    if start:
        try:
            care_date = date.fromisoformat(str(start)[:10])
        except ValueError:
            raise _bad(_("context.period.start doit être une date (AAAA-MM-JJ).")) from None
    labels = {
        coding.get("code")
        for label in body.get("securityLabel") or []
        for coding in (label.get("coding") or [])
        if coding.get("system") == resources.TRE_A07_SYSTEM
    }
    return {
        "subject": subject,
        "fileobj": io.BytesIO(data),
        "document_type": type_code,
        "title": title,
        "care_date": care_date,
        "original_name": attachment.get("title") or "",
        "hold": resources.HOLD_CODE in labels,
        "minors_secret": resources.MINORS_SECRET_CODE in labels,
    }


class DocumentReferences(FHIRView):
    """Search (``patient`` required; ``type``, ``category``, ``date``) and create."""

    @extend_schema(exclude=True)
    def get(self, request):
        patient = request.query_params.get("patient") or request.query_params.get("subject") or ""
        if not patient:
            raise _bad(_("Le paramètre patient est requis."), "patient_required")
        # Every parameter is checked before the opening: a bad request is refused without a trail entry or a
        # notice to the patient (T1, N1 only for real consultations).
        narrow = self._filters()
        self.paging()
        handle, profile = self.patient_handle(patient)
        practitioner = self.practitioner
        patient_id = patient.removeprefix("Patient/")
        if practitioner is not None:
            mode = handle.mode
            if not mode:
                mode = AccessMode.NORMAL
                decision = open_record(
                    practitioner, profile, mode=mode, attests_care_team=True, client_address=client_address(request)
                )
                if not decision.allowed:
                    if decision.message == str(GENERIC_REFUSAL):
                        raise NoMatch()
                    raise exceptions.PermissionDenied(detail=decision.message, code=decision.reason)
            documents = visible_documents(practitioner, profile, mode=mode)
        else:
            documents = documents_visible_to_patient(request.user, profile)
        return self.page(
            narrow(documents),
            lambda d: resources.document_reference(d, patient_id, for_practitioner=practitioner is not None),
        )

    def _filters(self):
        """The ``type``, ``category`` and ``date`` parameters, checked now, as a function narrowing a queryset."""
        params = self.request.query_params
        lookups: list[dict] = []
        nothing = False
        for value in params.getlist("type"):
            system, code = _token(value)
            lookups.append({"document_type__code": code})
            if system is not None:
                if system not in (resources.LOINC_SYSTEM, resources.TRE_A05_SYSTEM):
                    nothing = True
                wanted = "LOINC" if system == resources.LOINC_SYSTEM else "TRE_A05"
                lookups.append({"document_type__code_system__iexact": wanted})
        for value in params.getlist("category"):
            system, code = _token(value)
            if system not in (None, resources.CLASS_SYSTEM):
                nothing = True
            lookups.append({"document_type__class_code": code})
        dates = params.getlist("date")
        if dates:
            lookups.append(_date_filters(dates, "deposited_at__date"))

        def narrow(documents):
            if nothing:
                return documents.none()
            for lookup in lookups:
                documents = documents.filter(**lookup)
            return documents

        return narrow

    @extend_schema(exclude=True)
    def post(self, request):
        fields = _deposit_fields(request.data)
        handle, profile = self.patient_handle(fields.pop("subject"))
        actor = self.practitioner or request.user
        document = do_deposit_document(profile, actor=actor, **fields)
        resource = resources.document_reference(
            document, handles.issue(self.actor_key(), profile.pk), for_practitioner=self.practitioner is not None
        )
        return Response(
            resource,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"{self.base()}DocumentReference/{document.pk}"},
        )


class _OneDocument(FHIRView):
    def document(self, resource_id: str, *, for_content: bool):
        """The document for this actor, or 404.

        Practitioners: ``open_document`` (traced); patients: through ``documents_visible_to_patient`` over the
        profiles they manage.
        """
        if not resource_id.isdigit() or int(resource_id) > MAX_ID:
            raise ResourceNotFound()
        document_id = int(resource_id)
        if self.practitioner is not None:
            document = open_document(
                self.practitioner, document_id, mode=AccessMode.NORMAL, client_address=client_address(self.request)
            )
            if document is None:
                raise ResourceNotFound()
            return document, handles.issue(self.actor_key(), document.profile_id)
        for profile in profiles_managed_by(self.request.user):
            document = documents_visible_to_patient(self.request.user, profile).filter(pk=document_id).first()
            if document is not None:
                if for_content:
                    do_trace_patient_read(
                        profile,
                        document,
                        actor=cast(User, self.request.user),  # a patient's token: authenticated
                        download=True,
                        client_address=client_address(self.request),
                    )
                return document, handles.issue(self.actor_key(), profile.pk)
        raise ResourceNotFound()


class DocumentReferenceRead(_OneDocument):
    @extend_schema(exclude=True)
    def get(self, request, resource_id):
        document, patient_id = self.document(resource_id, for_content=False)
        return Response(
            resources.document_reference(document, patient_id, for_practitioner=self.practitioner is not None)
        )


class BinaryRead(_OneDocument):
    """The document's content: raw bytes, or a Binary resource (base64) when FHIR JSON is asked for."""

    @extend_schema(exclude=True)
    def get(self, request, resource_id):
        document, _patient_id = self.document(resource_id, for_content=True)
        accept = request.headers.get("Accept", "")
        if "json" in accept or request.query_params.get("_format") in ("json", "application/fhir+json"):
            return Response(resources.binary(document, b"".join(read_body(document))))
        return body_response(document, as_attachment=False)


class AuditEvents(FHIRView):
    """The trail as AuditEvents: the patient's own profiles (T3), or the treating doctor's patient (A6)."""

    @extend_schema(exclude=True)
    def get(self, request):
        patient = request.query_params.get("patient") or request.query_params.get("entity") or ""
        if not patient:
            raise _bad(_("Le paramètre patient est requis."), "patient_required")
        self.paging()
        _handle, profile = self.patient_handle(patient)
        patient_id = patient.removeprefix("Patient/")
        if self.practitioner is not None:
            if not may_see_trail(self.practitioner, profile):
                raise exceptions.PermissionDenied(
                    _("Seul le médecin traitant voit la trace de ce dossier."), code="not_treating_doctor"
                )
            entries = trail_for_treating_doctor(self.practitioner, profile)
        else:
            entries = trail_for_patient(profile, as_legal_representative=profile.user_id != request.user.pk)
        return self.page(entries, lambda entry: resources.audit_event(entry, patient_id))
