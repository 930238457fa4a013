"""FHIR's HTTP conventions on top of DRF: ``application/fhir+json`` in and out, every error an OperationOutcome.

The OperationOutcomes are built from the REST API's stable error codes (``plumbing.api_errors``).
"""

from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, negotiation, permissions, renderers

from accounts.api_auth import IsPatient, IsPractitioner
from fhir_server.resources import max_body_bytes, operation_outcome
from plumbing.api_errors import NOT_FOUND_MESSAGE
from plumbing.api_errors import exception_handler as api_exception_handler
from plumbing.json_parser import DepthLimitedJSONParser

FHIR_JSON = "application/fhir+json"


class FHIRRenderer(renderers.JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"
    charset = "utf-8"


class FHIRParser(DepthLimitedJSONParser):
    """``application/fhir+json`` (and plain JSON), with bounded size and nesting.

    The body size is bounded before it is read and its nesting as it is parsed (``plumbing.json_parser``).
    """

    media_type = FHIR_JSON

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if length > max_body_bytes():
            raise RequestTooLarge()
        return super().parse(stream, media_type, parser_context)


class PlainJSONParser(FHIRParser):
    media_type = "application/json"


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = _("Le corps de la requête est trop volumineux.")
    default_code = "too_large"


class AlwaysFHIR(negotiation.DefaultContentNegotiation):
    """Answer in FHIR JSON whatever the Accept header (``*/*``, ``application/json``, ``_format=json``…)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class IsPractitionerOrPatient(permissions.BasePermission):
    message = _("Ce compte n'a pas accès à l'interface FHIR.")
    code = "wrong_account_kind"

    def has_permission(self, request, view):
        return IsPractitioner().has_permission(request, view) or IsPatient().has_permission(request, view)


def exception_handler(exc, context):
    """The REST API's error, rewritten as an OperationOutcome with the same status and code."""
    response = api_exception_handler(exc, context)
    if response is None:
        return None
    error = response.data["error"]
    message = error["message"]
    if error.get("fields"):
        details = "; ".join(f"{name}: {' '.join(values)}" for name, values in error["fields"].items())
        message = f"{message} {details}"
    response.data = operation_outcome(response.status_code, error["code"], message)
    return response


@csrf_exempt  # an unknown path is a 404 for every method, not a CSRF failure
def not_found(request, *args, **kwargs):
    """Unknown paths under /fhir/."""
    body = operation_outcome(404, "not_found", str(NOT_FOUND_MESSAGE))
    return JsonResponse(body, status=404, content_type=FHIR_JSON)
