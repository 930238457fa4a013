"""FHIR's HTTP conventions on top of DRF: FHIR JSON or XML in and out, every error an OperationOutcome.

The format is chosen by ``_format`` (which wins) or ``Accept``: JSON (``application/fhir+json``, also for
``application/json`` and ``*/*``) or XML (``application/fhir+xml``, ``application/xml``, ``text/xml``, ``xml``).
A request for anything else is a 406, a body in anything else a 415: never an answer in the wrong format.
XML is written and read by fhir.resources (R4B models, with lxml), the JSON resource being the source.

The OperationOutcomes are built from the REST API's stable error codes (``plumbing.api_errors``).
"""

import json

from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.R4B import get_fhir_model_class
from lxml import etree
from rest_framework import exceptions, negotiation, parsers, permissions, renderers

from accounts.api_auth import IsPatient, IsPractitioner
from fhir_server.resources import max_body_bytes, operation_outcome
from plumbing.api_errors import NOT_FOUND_MESSAGE
from plumbing.api_errors import exception_handler as api_exception_handler
from plumbing.json_parser import DepthLimitedJSONParser
from plumbing.json_renderer import JSONRenderer

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
JSON_NAMES = {"json", "application/json", FHIR_JSON, "application/json+fhir"}
XML_NAMES = {"xml", "text/xml", "application/xml", FHIR_XML, "application/xml+fhir"}


class FHIRRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"
    charset = "utf-8"


def to_xml(data: dict) -> bytes:
    """A FHIR resource (a JSON-shaped dict) in FHIR XML."""
    xml = get_fhir_model_class(data["resourceType"]).model_validate(data).model_dump_xml()
    return xml.encode("utf-8") if isinstance(xml, str) else xml


class FHIRXMLRenderer(renderers.BaseRenderer):
    media_type = FHIR_XML
    format = "xml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return b"" if data is None else to_xml(data)


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


def _safe_xml_parser():
    # No entity expansion (billion laughs), no DTD or network access (XXE); libxml2 bounds the depth.
    return etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False)


class FHIRXMLParser(parsers.BaseParser):
    """``application/fhir+xml``: the resource read by fhir.resources, handed on as its FHIR JSON dict."""

    media_type = FHIR_XML

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if length > max_body_bytes():
            raise RequestTooLarge()
        data = stream.read(max_body_bytes() + 1) if stream is not None else b""
        if len(data) > max_body_bytes():
            raise RequestTooLarge()
        try:
            root = etree.fromstring(data, parser=_safe_xml_parser())
            resource_type = etree.QName(root).localname
            model = get_fhir_model_class(resource_type).model_validate_xml(data, xmlparser=_safe_xml_parser())
        except Exception as exc:  # lxml, an unknown resource type or a pydantic error: all a bad body
            raise exceptions.ParseError(_("Ressource FHIR XML illisible.")) from exc
        return json.loads(model.model_dump_json(exclude_none=True))


class PlainXMLParser(FHIRXMLParser):
    media_type = "application/xml"


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = _("Le corps de la requête est trop volumineux.")
    default_code = "too_large"


def wanted_format(request) -> str | None:
    """``json``, ``xml``, or None when the request accepts neither (``_format`` wins over ``Accept``)."""
    asked = request.GET.get("_format")
    if asked:
        name = asked.split(";")[0].strip().lower()
        return "json" if name in JSON_NAMES else "xml" if name in XML_NAMES else None
    accept = request.META.get("HTTP_ACCEPT", "") or "*/*"
    ranges = []
    for position, item in enumerate(accept.split(",")):
        media, *options = (part.strip() for part in item.split(";"))
        quality = 1.0
        for option in options:
            if option.startswith("q="):
                try:
                    quality = float(option[2:])
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranges.append((-quality, position, media.lower()))
    for _quality, _position, media in sorted(ranges):
        if media in JSON_NAMES or media in ("*/*", "application/*"):
            return "json"
        if media in XML_NAMES or media == "text/*":
            return "xml"
    return None


class AlwaysFHIR(negotiation.DefaultContentNegotiation):
    """FHIR JSON or FHIR XML as ``_format`` or ``Accept`` asks (renderers: JSON first, XML second); else 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        wanted = wanted_format(request)
        for renderer in renderers:
            if renderer.format == ("xml" if wanted == "xml" else "fhir") and wanted is not None:
                return renderer, renderer.media_type
        raise exceptions.NotAcceptable(_("Formats disponibles : application/fhir+json, application/fhir+xml."))


class AnyAccept(AlwaysFHIR):
    """For Binary: FHIR JSON or XML when asked, else the first renderer (the view answers with the raw bytes)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            if request.GET.get("_format"):  # a format was named and is not FHIR JSON or XML: 406
                raise
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
    """Unknown paths under /fhir/ (in XML when XML is asked for)."""
    body = operation_outcome(404, "not_found", str(NOT_FOUND_MESSAGE))
    if wanted_format(request) == "xml":
        return HttpResponse(to_xml(body), status=404, content_type=f"{FHIR_XML}; charset=utf-8")
    return JsonResponse(body, status=404, content_type=FHIR_JSON)
