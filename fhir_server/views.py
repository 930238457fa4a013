"""The FHIR R4 interface (``/fhir/``), for practice software and patient apps.

It goes through the same door as the portals and the REST API.

Practitioners: ``Patient?identifier=<NIR OID>|<NIR>&birthdate=…`` is the identity look-up (A11, both traits
required; traced and throttled when it fails); the Patient's id is a handle (``access_control.handles``).
``DocumentReference?patient=<id>`` opens the record in normal mode — the request is the care-team attestation
(A1) — which writes the trail entry and the consultation notice (T1, N1) exactly as the portal does, then lists
what the door lets them see (A2, A4, A12); a patient id opened in emergency through the REST API keeps its mode.
``DocumentReference/<id>`` and ``Binary/<id>`` open one document (``open_document``: traced, normal mode);
``POST DocumentReference`` deposits (A10, with TRE_A07 ``INVISIBLE_PATIENT`` for a hold, A8, and
``INVISIBLE_REPRESENTANTS_LEGAUX`` for the minor's secret, A9). ``POST [base]`` takes an IHE ITI-65 Provide
Document Bundle (``fhir_server.transaction``), deposited all or none by ``do_deposit_documents``, with
replacement (``relatesTo`` replaces); ``PATCH DocumentReference/<id>`` lets the author mark a document
superseded. ``Practitioner/<id>`` is an author's directory entry. ``AuditEvent?patient=<id>``: the treating
doctor's view of the trail (A6, T3).

Patients: the same resources over the profiles they manage (L10), with their own Patient ids; documents as the
patient sees them (A8, A9); their trail (T3).
"""

import base64
import binascii
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

from django.db.models import Count, Window
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from access_control import handles
from access_control.actions import do_deposit_documents, do_supersede_document
from access_control.api import (
    LookupThrottled,
    RecordListing,
    documents_visible_to_patient,
    find_profile,
    may_open,
    may_see_trail,
    open_document,
    profiles_managed_by,
    visible_documents,
)
from access_control.models import AccessMode
from access_control.queries import trail_for_patient, trail_for_treating_doctor
from access_control.rules import GENERIC_REFUSAL
from accounts.api_auth import READ, TokenScope
from accounts.auth import client_address
from fhir_server import resources
from fhir_server import search as fhir_search
from fhir_server import transaction as iti65
from fhir_server.http import (
    AlwaysFHIR,
    AnyAccept,
    FHIRParser,
    FHIRRenderer,
    FHIRXMLParser,
    FHIRXMLRenderer,
    IsPractitionerOrPatient,
    PlainJSONParser,
    PlainXMLParser,
    exception_handler,
    wanted_format,
)
from plumbing.api_errors import TOTAL, NeverCached
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
    renderer_classes = [FHIRRenderer, FHIRXMLRenderer]
    parser_classes = [FHIRParser, PlainJSONParser, FHIRXMLParser, PlainXMLParser]
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

    def patient_ref(self, value: str) -> "PatientRef":
        """The profile behind a Patient id given by this actor, or 404 alike for every failure (no oracle).

        The id is this actor's stable id (``handles.stable_id``) or a REST API handle (which keeps the access mode
        it was opened in). A practitioner's stable id is usable while they found the patient by identity traits
        in the last hour or hold a current opening of the record (``access_control.handles``).
        """
        value = (value or "").rsplit("/", 1)[-1]
        key = self.actor_key()
        mode = ""
        profile_id = handles.read_stable_id(key, value)
        stable = profile_id is not None
        if profile_id is None:
            handle = handles.read(key, value)
            if handle is None:
                raise NoMatch()
            profile_id, mode = handle.profile_id, handle.mode
        practitioner = self.practitioner
        if practitioner is None:
            profile = profiles_managed_by(self.request.user).filter(pk=profile_id).first()
            standing = None
        else:
            # One query: the profile, whether a current opening stands and whether the record may be opened now.
            profile = handles.consultation_profile(practitioner.pk, profile_id)
            opened = profile is not None and profile._opened  # type: ignore[attr-defined]  # annotated
            if stable and not opened and not handles.recently_found(key, profile_id):
                raise NoMatch()  # A11: look the patient up again (the same id comes back)
            standing = opened and profile._openable  # type: ignore[union-attr]  # annotated (opened: a profile)
        if profile is None:
            raise NoMatch()
        return PatientRef(profile=profile, mode=mode, id=handles.stable_id(key, profile.pk), standing=standing)

    def strict(self) -> bool:
        return fhir_search.handling(self.request) == fhir_search.STRICT

    def paging(self, params=None) -> tuple[int, int]:
        """``_count`` and ``page``, checked (a handler calls this before it opens anything)."""
        params = self.request.query_params if params is None else params
        count = _integer(params.get("_count"), DEFAULT_COUNT, 0, MAX_COUNT, "_count")  # 0: the total only
        number = _integer(params.get("page"), 1, 1, 10**6, "page")
        return count, number

    def link(self, applied: list[tuple[str, str]]) -> str:
        """A URL of this search repeating only the parameters applied (how FHIR says what it did)."""
        path = self.request.path.removesuffix("/_search")
        query = urlencode(applied)
        return self.request.build_absolute_uri(f"{path}?{query}" if query else path)

    def page(self, queryset, to_resource, *, applied=None, params=None, summary_count: bool = False) -> Response:
        """A searchset Bundle of one page (``_count``, ``page``), with its total and links.

        ``applied``: the (name, value) pairs the search honoured, repeated in the links; ``None`` repeats the
        request's own query string.
        """
        count, number = self.paging(params)
        summary_count = summary_count or count == 0
        total = queryset.count()
        items = [] if summary_count else list(queryset[(number - 1) * count : number * count])
        links = self.links(count, number, total, applied=applied, summary_count=summary_count)
        return Response(
            resources.bundle([to_resource(item) for item in items], total=total, base=self.base(), links=links)
        )

    def links(self, count: int, number: int, total: int, *, applied, summary_count: bool) -> dict[str, str]:
        """The Bundle's ``self`` and ``next`` links for page ``number`` of ``count`` (``page``'s arguments)."""
        if applied is None:
            links = {"self": self.request.build_absolute_uri()}
            base_query = [(k, v) for k, vs in self.request.query_params.lists() for v in vs if k not in ("page",)]
        else:
            base_query = [(k, v) for k, v in applied if k not in ("page", "_count")]
            links = {"self": self.link([*base_query, ("_count", str(count)), ("page", str(number))])}
        if not summary_count and number * count < total:
            rest = [(k, v) for k, v in base_query if k != "_count"]
            links["next"] = self.link([*rest, ("_count", str(count)), ("page", str(number + 1))])
        return links


@dataclass(frozen=True)
class PatientRef:
    profile: Profile
    mode: str  # the access mode a REST API handle was opened in; "" otherwise
    id: str  # the Patient id to show this actor (their stable id)
    # For a practitioner: a current normal-mode opening stands and the record may still be opened (handles.consult).
    standing: bool | None = None


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


class Metadata(FHIRView):
    """The CapabilityStatement: what this server offers (no authentication needed)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(exclude=True)
    def get(self, request):
        return Response(resources.capability_statement(self.base()))


PATIENT_PARAMETERS = {"identifier", "birthdate"}


def _search_params(request):
    """The parameters of a search: the URL's, and for ``POST …/_search`` the form body's (the body wins)."""
    params = request.query_params.copy()
    if request.method == "POST":
        _reject_nul(request.data)
        for key, values in request.data.lists():
            params.setlist(key, values)
    return params


class PatientSearch(FHIRView):
    """A11: find a patient by INS and birth date, preferably with ``POST /fhir/Patient/_search``.

    The form-encoded body ``identifier=urn:oid:1.2.250.1.213.1.4.8|<NIR>&birthdate=YYYY-MM-DD`` is the way to
    search: no NIR or birth date in a URL, a proxy's or server's log. ``GET /fhir/Patient?…`` takes the same
    parameters and gives the same answer. The Patient id is the actor's stable id (``handles.stable_id``).
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
        return self.search(_search_params(request), posted=True)

    def search(self, params, *, posted: bool = False) -> Response:
        request = self.request
        applied = fhir_search.known_only(params, PATIENT_PARAMETERS | {"_format"}, strict=self.strict())
        if any(":" in key for key, _value in applied):
            raise fhir_search.bad(_("Modificateur non pris en charge."), "unsupported_modifier")
        identifier = params.get("identifier", "")
        birthdate = params.get("birthdate", "")
        if not identifier or not birthdate:
            raise _bad(
                _("La recherche de patient exige identifier (NIR) et birthdate."), "identifier_and_birthdate_required"
            )
        system, nir = fhir_search.token(identifier)
        if not resources.accepts_nir_system(system):
            raise _bad(_("Identifiant attendu : %(system)s|<NIR>.") % {"system": resources.nir_system()})
        start, end = fhir_search.date_range(birthdate)
        birth_date = start.date()
        if len(birthdate) != 10 or (end - start).days != 1:
            raise _bad(_("La date de naissance doit être exacte (AAAA-MM-JJ)."))
        key = self.actor_key()
        if self.practitioner is not None:
            try:
                profile = find_profile(
                    self.practitioner, nir=nir, birth_date=birth_date, client_address=client_address(request)
                )
            except LookupThrottled as exc:
                raise exceptions.Throttled(detail=exc.messages[0], code="lookup_throttled") from None
            found = [profile] if profile is not None else []
            for profile in found:
                handles.mark_found(key, profile.pk)
        else:
            found = list(profiles_managed_by(request.user).filter(nir=normalize_nir(nir), birth_date=birth_date))
        patients = [resources.patient(p, handles.stable_id(key, p.pk)) for p in found]
        # A POSTed search keeps the NIR out of its links too.
        links = {"self": request.build_absolute_uri(request.path) if posted else self.link(applied)}
        return Response(resources.bundle(patients, total=len(patients), base=self.base(), links=links))


class PatientRead(FHIRView):
    """``Patient/<id>``: the patient behind one of this actor's Patient ids (``DocumentReference.subject``)."""

    @extend_schema(exclude=True)
    def get(self, request, resource_id):
        ref = self.patient_ref(resource_id)
        if self.practitioner is not None and not ref.mode and not may_open(self.practitioner, ref.profile):
            raise NoMatch()  # blocked or closed since the look-up: alike an unknown id (A5)
        return Response(resources.patient(ref.profile, ref.id))


class PractitionerRead(FHIRView):
    """``Practitioner/<id>``: a document author's directory entry (public RPPS data only; resolves ``author``)."""

    @extend_schema(exclude=True)
    def get(self, request, resource_id):
        if not resource_id.isdigit() or int(resource_id) > MAX_ID:
            raise ResourceNotFound()
        entry = Practitioner.objects.select_related("profession").filter(pk=int(resource_id)).first()
        if entry is None:
            raise ResourceNotFound()
        return Response(resources.practitioner(entry))


class Transaction(FHIRView):
    """``POST [base]``: IHE MHD ITI-65 Provide Document Bundle, deposited all or none (A10, A8, A9)."""

    @extend_schema(exclude=True)
    def post(self, request):
        if _has_nul(request.data):
            raise _bad(_("Caractère nul interdit dans la ressource."), "invalid_character")
        deposit = iti65.read_bundle(request.data)
        ref = self.patient_ref(deposit.subject)
        documents = do_deposit_documents(ref.profile, deposit.submissions, actor=self.practitioner or request.user)
        return Response(transaction_response(deposit, documents), status=status.HTTP_200_OK)


def transaction_response(deposit: "iti65.Deposit", documents: list) -> dict:
    """The transaction-response Bundle: one entry per request entry, in order (FHIR transaction rules)."""
    entries = []
    for kind, index in deposit.answers:
        response: dict[str, Any]
        if kind == "document":
            response = {"status": "201 Created", "location": f"DocumentReference/{documents[index].pk}"}
        elif kind == "binary":
            response = {"status": "201 Created", "location": f"Binary/{documents[index].pk}"}
        elif kind == "replaced":
            response = {"status": "200 OK", "location": f"DocumentReference/{index}"}
        else:  # the SubmissionSet: checked, not kept
            response = {
                "status": "200 OK",
                "outcome": resources.information_outcome(
                    str(_("Carnet ne conserve pas les lots de soumission (List)."))
                ),
            }
        entries.append({"response": response})
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def _patched_status(body) -> str:
    """The status a PATCH asks for: a FHIRPath Patch (Parameters) or a JSON body ``{"status": …}`` (fhirpy)."""
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        if iti65.patch_supersedes(body):
            return "superseded"
    elif isinstance(body, dict) and set(body) - {"resourceType"} == {"status"}:
        return str(body["status"])
    raise _bad(
        _("Seul le statut peut être modifié, et seulement vers superseded (mise à jour des métadonnées PDSm)."),
        "unsupported_patch",
    )


def _created_subject(body) -> str:
    """The subject of a DocumentReference to create, once its required parts are there (or a 400 naming them)."""
    if not isinstance(body, dict) or body.get("resourceType") != "DocumentReference":
        raise _bad(_("Le corps doit être une ressource DocumentReference."))
    if _has_nul(body):
        raise _bad(_("Caractère nul interdit dans la ressource."), "invalid_character")
    try:
        next(c["code"] for c in body["type"]["coding"] if c.get("code"))
        base64.b64decode(body["content"][0]["attachment"]["data"], validate=True)
        return str(body["subject"]["reference"])
    except (KeyError, IndexError, TypeError, StopIteration, binascii.Error, ValueError, AttributeError):
        raise _bad(
            _("DocumentReference incomplet : subject, type.coding, content[0].attachment.data (base64) requis.")
        ) from None


class DocumentReferences(FHIRView):
    """IHE MHD ITI-67 search (``GET``, or ``POST DocumentReference/_search``), and create.

    Every parameter is checked before the record is opened (``fhir_server.search``): a bad request is refused
    without a trail entry or a notice to the patient (T1, N1 only for real consultations). A practitioner's
    consultation of a record is one trail entry however it is paged or listed again (``handles.consult``).
    """

    @extend_schema(exclude=True)
    def get(self, request):
        return self.search(request.query_params)

    def search(self, params) -> Response:
        practitioner = self.practitioner
        compiled = None
        query = fhir_search.document_search(params, strict=self.strict(), for_practitioner=practitioner is not None)
        self.paging(params)
        ref = self.search_subject(query)
        if practitioner is not None:
            mode = ref.mode
            if not mode:
                mode = AccessMode.NORMAL
                decision = handles.consult(
                    practitioner, ref.profile, client_address=client_address(self.request), standing=ref.standing
                )
                if decision is not None and not decision.allowed:
                    if decision.message == str(GENERIC_REFUSAL):
                        raise NoMatch()
                    raise exceptions.PermissionDenied(detail=decision.message, code=decision.reason)
            if not query.conditions:  # the whole record, as practice software lists it: its SQL compiled once
                compiled = _compiled_page(practitioner.pk, ref.profile.pk, mode)

            def documents():
                return query.narrow(visible_documents(practitioner, ref.profile, mode=mode))
        else:

            def documents():
                return query.narrow(documents_visible_to_patient(self.request.user, ref.profile))

        return self.listing(
            documents,
            ref.id,
            applied=[("patient", ref.id), *query.applied],
            params=params,
            summary_count=query.summary_count,
            compiled=compiled,
        )

    def listing(self, documents, patient_id: str, *, applied, params, summary_count: bool, compiled=None) -> Response:
        """A page of DocumentReferences: ``page()``'s Bundle, from ``values()`` rows with the total in the same query.

        No model instances and one round trip less (bench/README.md, api.py); past the last page the total takes
        a query of its own. ``documents()`` builds the queryset listed; ``compiled(offset, limit)`` gives the same
        rows from SQL compiled once (``_compiled_page``). ``listing_reference`` is the plain version.
        """
        count, number = self.paging(params)
        summary_count = summary_count or count == 0
        rows: list[dict[str, Any]] = []
        if summary_count:
            total = documents().count()
        else:
            start = (number - 1) * count
            if compiled is not None:
                rows = compiled(start, count)
            else:
                page = documents().values(*resources.DOCUMENT_COLUMNS).annotate(**{TOTAL: Window(Count("*"))})
                rows = list(page[start : start + count])
            total = rows[0][TOTAL] if rows else 0 if number == 1 else documents().count()
        entries = resources.document_references(rows, patient_id, for_practitioner=self.practitioner is not None)
        links = self.links(count, number, total, applied=applied, summary_count=summary_count)
        return Response(resources.bundle(entries, total=total, base=self.base(), links=links))

    def listing_reference(self, documents, patient_id: str, *, compiled=None, **options) -> Response:
        """``listing``'s reference: ``page()`` over the model instances (tests/test_fhir_listing.py compares them)."""
        for_practitioner = self.practitioner is not None
        return self.page(
            documents(),
            lambda d: resources.document_reference(d, patient_id, for_practitioner=for_practitioner),
            **options,
        )

    def search_subject(self, query: fhir_search.DocumentSearch) -> PatientRef:
        """The patient searched: ``patient`` (an id), or ``patient.identifier`` (the NIR) where A11 allows it."""
        if query.patient:
            ref = self.patient_ref(query.patient)
            if query.patient_identifier and normalize_nir(query.patient_identifier[1]) != ref.profile.nir:
                raise NoMatch()  # two different patients: nothing to list
            return ref
        if query.patient_identifier is None:
            raise _bad(_("Le paramètre patient est requis."), "patient_required")
        if self.practitioner is not None:
            # A11: a practitioner reaches a record by NIR *and* birth date (Patient search), never by NIR alone.
            raise _bad(
                _("patient.identifier seul ne suffit pas : cherchez d'abord le patient par NIR et date de naissance."),
                "identifier_and_birthdate_required",
            )
        nir = normalize_nir(query.patient_identifier[1])
        profile = profiles_managed_by(self.request.user).filter(nir=nir).first()
        if profile is None:
            raise NoMatch()
        return PatientRef(profile=profile, mode="", id=handles.stable_id(self.actor_key(), profile.pk))

    @extend_schema(exclude=True)
    def post(self, request):
        subject = _created_subject(request.data)  # the basics, refused with the create's own message
        # Then the MHD metadata, exactly as in an ITI-65 Bundle: unique id, hash and size checks, care setting,
        # replacement (relatesTo), confidentiality (MHD Simplified Publish).
        submission, _binary = iti65.document_submission(request.data, {}, {})
        ref = self.patient_ref(subject)
        actor = self.practitioner or request.user
        document = do_deposit_documents(ref.profile, [submission], actor=actor)[0]
        resource = resources.document_reference(document, ref.id, for_practitioner=self.practitioner is not None)
        return Response(
            resource,
            status=status.HTTP_201_CREATED,
            headers={"Location": f"{self.base()}DocumentReference/{document.pk}"},
        )


# The whole record's page and its total as ``DocumentReferences.listing`` reads them, from SQL compiled once.
_PAGES = RecordListing(*resources.DOCUMENT_COLUMNS, total=TOTAL)


def _compiled_page(practitioner_id: int, profile_id: int, mode: str):
    def rows(offset: int, limit: int) -> list[dict[str, Any]]:
        return _PAGES.rows(practitioner_id, profile_id, mode, limit=limit, offset=offset)

    return rows


class DocumentReferenceSearch(DocumentReferences):
    """``POST DocumentReference/_search``: the same search, its parameters in a form-encoded body."""

    parser_classes = [FormParser]
    required_scope = READ

    @extend_schema(exclude=True)
    def post(self, request):
        return self.search(_search_params(request))


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
            return document, handles.stable_id(self.actor_key(), document.profile_id)
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
                return document, handles.stable_id(self.actor_key(), profile.pk)
        raise ResourceNotFound()


class DocumentReferenceRead(_OneDocument):
    @extend_schema(exclude=True)
    def get(self, request, resource_id):
        document, patient_id = self.document(resource_id, for_content=False)
        return Response(
            resources.document_reference(document, patient_id, for_practitioner=self.practitioner is not None)
        )

    @extend_schema(exclude=True)
    def patch(self, request, resource_id):
        """PDSm metadata update: the document's author marks it superseded (withdrawn from current use)."""
        if _patched_status(request.data) != "superseded":
            raise _bad(_("Seul le statut superseded peut être demandé."), "unsupported_patch")
        if not resource_id.isdigit() or int(resource_id) > MAX_ID:
            raise ResourceNotFound()
        do_supersede_document(int(resource_id), actor=self.practitioner or request.user)
        return Response(resources.information_outcome(str(_("Document remplacé (superseded)."))))


class BinaryRead(_OneDocument):
    """The document's content: raw bytes, or a Binary resource (base64) when FHIR JSON or XML is asked for."""

    content_negotiation_class = AnyAccept

    def fhir_asked(self) -> bool:
        """FHIR was named (``_format``, or a JSON or XML type in ``Accept``), not merely accepted (``*/*``)."""
        request = self.request
        if request.query_params.get("_format"):
            return True
        accept = request.headers.get("Accept", "").lower()
        return wanted_format(request) is not None and any(t in accept for t in ("json", "xml"))

    @extend_schema(exclude=True)
    def get(self, request, resource_id):
        document, _patient_id = self.document(resource_id, for_content=True)
        if self.fhir_asked():
            return Response(resources.binary(document, b"".join(read_body(document))))
        return body_response(document, as_attachment=False)


AUDIT_PARAMETERS = {"patient", "entity"}


class AuditEvents(FHIRView):
    """The trail as AuditEvents: the patient's own profiles (T3), or the treating doctor's patient (A6)."""

    @extend_schema(exclude=True)
    def get(self, request):
        applied = fhir_search.known_only(
            request.query_params, AUDIT_PARAMETERS | fhir_search.COMMON, strict=self.strict()
        )
        if any(":" in key for key, _value in applied) or request.query_params.get("_summary") not in (None, "false"):
            raise fhir_search.bad(_("Modificateur ou _summary non pris en charge."), "unsupported_modifier")
        patient = request.query_params.get("patient") or request.query_params.get("entity") or ""
        if not patient:
            raise _bad(_("Le paramètre patient est requis."), "patient_required")
        self.paging()
        ref = self.patient_ref(patient)
        profile, patient_id = ref.profile, ref.id
        if self.practitioner is not None:
            if not may_see_trail(self.practitioner, profile):
                raise exceptions.PermissionDenied(
                    _("Seul le médecin traitant voit la trace de ce dossier."), code="not_treating_doctor"
                )
            entries = trail_for_treating_doctor(self.practitioner, profile)
        else:
            entries = trail_for_patient(profile, as_legal_representative=profile.user_id != request.user.pk)
        return self.page(
            entries,
            lambda entry: resources.audit_event(entry, patient_id),
            applied=[("patient", patient_id), *((k, v) for k, v in applied if k not in ("patient", "entity"))],
        )
