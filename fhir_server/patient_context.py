"""FHIR for connected apps (SMART on FHIR, issue 17): one profile, read as the patient reads it.

An app's token (``accounts.app_tokens``) names a connection: an account, the one profile the patient opened to
the app, and the scopes granted. Requests bearing one are routed here (``routed``) rather than to the views of
``fhir_server.views``: an app reads ``Patient`` (that profile only), ``DocumentReference`` (search and read),
``Binary`` and ``AuditEvent`` (the profile's trail), each only with its scope, and always through the *patient's*
door — ``documents_visible_to_patient`` and ``trail_for_patient`` for the account that connected it. So an app
never sees more than its patient: not a document on hold (A8), nor, for a representative's app, a minor's secret
(A9). It writes nothing. Every request is traced in the profile's trail under the app's name (T1).

``smart_configuration`` is the discovery document of SMART App Launch 2.x.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from access_control.api import documents_visible_to_patient
from access_control.queries import trail_for_patient
from accounts.app_server import do_trace_app_read, patient_id
from accounts.app_tokens import AppAccess, AppTokenAuthentication, HasAppScope, is_app_token
from accounts.auth import client_address
from accounts.smart import CAPABILITIES, SCOPES
from fhir_server import resources
from fhir_server import search as fhir_search
from fhir_server.http import AnyAccept
from fhir_server.security import endpoints
from fhir_server.views import MAX_ID, FHIRView, NoMatch, ResourceNotFound
from records.storage import body_response, read_body

AUDIT_PARAMETERS = {"patient", "entity"}


def routed(default_view, app_view):
    """The view for a FHIR route: ``app_view`` for a connected app's token, ``default_view`` for anyone else."""

    def view(request, *args, **kwargs):
        chosen = app_view if is_app_token(request) else default_view
        return chosen(request, *args, **kwargs)

    view.csrf_exempt = True  # type: ignore[attr-defined]  # both are DRF views: CSRF is theirs to check
    return view


class AppView(FHIRView):
    """A connected app's request: its token, the scope of ``resource_type``, the connection's profile only."""

    authentication_classes = [AppTokenAuthentication]
    permission_classes = [HasAppScope]
    resource_type = ""

    @property
    def access(self) -> AppAccess:
        access = self.request.auth
        assert isinstance(access, AppAccess)  # noqa: S101  HasAppScope let only an app's request through
        return access

    @property
    def patient_id(self) -> str:
        return patient_id(self.access.connection)

    def check_patient(self, value: str | None) -> None:
        """A ``patient`` given by the app must be its own patient's id (any other: 404 alike, no oracle)."""
        if value is not None and value.rsplit("/", 1)[-1] != self.patient_id:
            raise NoMatch()

    def trace(self, what: str, document=None) -> None:
        access = self.access
        do_trace_app_read(
            access.connection,
            actor=access.connection.user,
            application=access.application,
            what=what,
            document=document,
            client_address=client_address(self.request),
        )

    def documents(self):
        """The profile's documents as the account that connected the app sees them (A8, A9)."""
        return documents_visible_to_patient(self.request.user, self.access.profile)


class AppPatientSearch(AppView):
    """``Patient`` (search): the connection's patient, whatever else is asked (``_id`` may narrow it to none)."""

    resource_type = "Patient"

    @extend_schema(exclude=True)
    def get(self, request):
        wanted = request.query_params.get("_id")
        patients = [] if wanted is not None and wanted != self.patient_id else [self.access.profile]
        self.trace("Patient?")
        return Response(
            resources.bundle(
                [resources.patient(p, self.patient_id) for p in patients],
                total=len(patients),
                base=self.base(),
                links={"self": request.build_absolute_uri()},
            )
        )


class AppPatientRead(AppView):
    resource_type = "Patient"

    @extend_schema(exclude=True)
    def get(self, request, resource_id):
        self.check_patient(resource_id)
        self.trace("Patient/read")
        return Response(resources.patient(self.access.profile, self.patient_id))


class AppDocumentReferences(AppView):
    """``DocumentReference`` search: the patient's parameters, over what the patient sees."""

    resource_type = "DocumentReference"

    @extend_schema(exclude=True)
    def get(self, request):
        params = request.query_params
        query = fhir_search.document_search(params, strict=self.strict(), for_practitioner=False)
        self.paging(params)
        if query.patient_identifier is not None:
            raise fhir_search.bad(_("Cherchez par patient (l'identifiant donné à l'application)."), "patient_required")
        self.check_patient(query.patient)
        self.trace("DocumentReference?")
        return self.page(
            query.narrow(self.documents()),
            lambda d: resources.document_reference(d, self.patient_id, for_practitioner=False),
            applied=[("patient", self.patient_id), *query.applied],
            params=params,
            summary_count=query.summary_count,
        )


class AppOneDocument(AppView):
    resource_type = "DocumentReference"

    def document(self, resource_id: str):
        if not resource_id.isdigit() or int(resource_id) > MAX_ID:
            raise ResourceNotFound()
        document = self.documents().filter(pk=int(resource_id)).first()
        if document is None:
            raise ResourceNotFound()
        return document


class AppDocumentReferenceRead(AppOneDocument):
    @extend_schema(exclude=True)
    def get(self, request, resource_id):
        document = self.document(resource_id)
        self.trace("DocumentReference/read", document)
        return Response(resources.document_reference(document, self.patient_id, for_practitioner=False))


class AppBinaryRead(AppOneDocument):
    """The document's content: raw bytes, or a Binary resource when FHIR JSON or XML is asked for."""

    resource_type = "Binary"
    content_negotiation_class = AnyAccept

    @extend_schema(exclude=True)
    def get(self, request, resource_id):
        document = self.document(resource_id)
        self.trace("Binary/read", document)
        accept = request.headers.get("Accept", "").lower()
        if request.query_params.get("_format") or "json" in accept or "xml" in accept:
            return Response(resources.binary(document, b"".join(read_body(document))))
        return body_response(document, as_attachment=False)


class AppAuditEvents(AppView):
    """The profile's trail as its account sees it (T3; a representative does not see the minor's secret, A9)."""

    resource_type = "AuditEvent"

    @extend_schema(exclude=True)
    def get(self, request):
        applied = fhir_search.known_only(
            request.query_params, AUDIT_PARAMETERS | fhir_search.COMMON, strict=self.strict()
        )
        if any(":" in key for key, _value in applied) or request.query_params.get("_summary") not in (None, "false"):
            raise fhir_search.bad(_("Modificateur ou _summary non pris en charge."), "unsupported_modifier")
        self.check_patient(request.query_params.get("patient") or request.query_params.get("entity"))
        self.paging()
        profile = self.access.profile
        entries = trail_for_patient(profile, as_legal_representative=profile.user_id != request.user.pk)
        self.trace("AuditEvent?")
        return self.page(
            entries,
            lambda entry: resources.audit_event(entry, self.patient_id),
            applied=[("patient", self.patient_id), *((k, v) for k, v in applied if k not in ("patient", "entity"))],
        )


@never_cache
@require_GET
def smart_configuration(request):
    """``.well-known/smart-configuration`` (SMART App Launch 2.x): endpoints, scopes and capabilities."""
    origin = request.build_absolute_uri("/").rstrip("/")
    uris = endpoints(origin)
    body = {
        "issuer": origin,
        "authorization_endpoint": uris["authorize"],
        "token_endpoint": uris["token"],
        "revocation_endpoint": uris["revoke"],
        "management_endpoint": uris["manage"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "response_types_supported": ["code"],
        "scopes_supported": list(SCOPES),
        "code_challenge_methods_supported": ["S256"],
        "capabilities": CAPABILITIES,
    }
    response = JsonResponse(body)
    response["Access-Control-Allow-Origin"] = "*"  # public metadata, read by browser-based apps
    return response
