"""Carnet's objects as FHIR R4 resources (plain dicts, ``application/fhir+json``).

Patient, DocumentReference, Binary, AuditEvent, Bundle, OperationOutcome and the CapabilityStatement.

Codes follow the French document-sharing framework where it has them: the INS NIR OID for identifiers (I3),
JDV_J66 type codes (LOINC, or TRE_A05 by its OID), TRE_A07 visibility codes in ``securityLabel``, the RPPS
national practitioner identifier (IDNPS), JDV_J38 access modes. The JDV_J57 class codes and the trail's action
names have no system we could confirm: they go under Carnet's own ``urn:carnet:fhir:`` systems.
"""

import base64
from typing import Any

from django.conf import settings
from django.utils import timezone

from access_control.models import TrailEntry
from access_control.rules import EMERGENCY_MODES
from fhir_server.security import capability_security

FHIR_VERSION = "4.0.1"
NIR_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"  # I3
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"  # national identifier of health professionals (8 + RPPS, I2)
LOINC_SYSTEM = "http://loinc.org"
TRE_A05_SYSTEM = "urn:oid:1.2.250.1.213.1.1.4.12"
TRE_A07_SYSTEM = "urn:oid:1.2.250.1.213.1.1.4.13"  # visibility codes: MASQUE_PS, INVISIBLE_PATIENT, …
# Class codes (JDV_J57, from TRE_A03 ClasseDocument), under the OID the ANS guide names; searches also take the
# guide's newer canonical URL and the system Carnet used before.
CLASS_SYSTEM = "urn:oid:1.2.250.1.213.1.1.4.1"
CLASS_SYSTEMS = frozenset(
    {
        CLASS_SYSTEM,
        "https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument",
        "urn:carnet:fhir:classcode",
    }
)
CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
NORMAL_CONFIDENTIALITY = "N"
# IHE format codes (TRE_A11): PDF and plain text have theirs; the other formats say the media type suffices.
FORMAT_SYSTEM = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
FORMAT_SYSTEMS = frozenset(
    {
        FORMAT_SYSTEM,
        "urn:oid:1.3.6.1.4.1.19376.1.2.3",
        "https://mos.esante.gouv.fr/NOS/TRE_A11-IheFormatCode/FHIR/TRE-A11-IheFormatCode",
    }
)
FORMAT_CODES = {"application/pdf": "urn:ihe:iti:xds-sd:pdf:2008", "text/plain": "urn:ihe:iti:xds-sd:text:2008"}
MIME_TYPE_SUFFICIENT = "urn:ihe:iti:xds:2017:mimeTypeSufficient"
URI_SYSTEM = "urn:ietf:rfc:3986"
# A document's unique id (masterIdentifier) and its reference's id (identifier, the XDS entryUUID): UUIDs of
# version 8 (RFC 9562, custom layout) whose last 48 bits are the document's id, so a search by either is exact.
_MASTER_PREFIX = "urn:uuid:c4a2e7d0-0d0c-8d0c-8000-"
_ENTRY_PREFIX = "urn:uuid:c4a2e7d0-0d0c-8e1e-8000-"
ACTION_SYSTEM = "urn:carnet:fhir:trail-action"
MODE_SYSTEM = "urn:carnet:fhir:access-mode"  # JDV_J38: normal, bris_de_glace, centre_15
ERROR_SYSTEM = "urn:carnet:fhir:error-code"
ACT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
DICOM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
HOLD_CODE = "INVISIBLE_PATIENT"  # A8
MINORS_SECRET_CODE = "INVISIBLE_REPRESENTANTS_LEGAUX"  # noqa: S105  A9 (a code)
MASKED_CODE = "MASQUE_PS"  # A4


def type_system(code_system: str) -> str:
    return LOINC_SYSTEM if code_system.upper() == "LOINC" else TRE_A05_SYSTEM


def _instant(moment) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds")


def patient(profile, resource_id: str) -> dict:
    names = [{"use": "official", "family": profile.birth_name, "given": profile.first_names.split()}]
    if profile.usual_name:
        names.append({"use": "usual", "family": profile.usual_name, "given": profile.first_names.split()[:1]})
    return {
        "resourceType": "Patient",
        "id": resource_id,
        "identifier": [{"use": "official", "system": NIR_SYSTEM, "value": profile.nir}],
        "name": names,
        "gender": {"M": "male", "F": "female"}.get(profile.sex, "unknown"),
        "birthDate": profile.birth_date.isoformat(),
    }


def master_identifier(document_id: int) -> str:
    return f"{_MASTER_PREFIX}{document_id:012x}"


def entry_identifier(document_id: int) -> str:
    return f"{_ENTRY_PREFIX}{document_id:012x}"


def document_id_from_identifier(value: str) -> int | None:
    """The document id behind a masterIdentifier or identifier Carnet gave, or None."""
    for prefix in (_MASTER_PREFIX, _ENTRY_PREFIX):
        tail = value.lower().removeprefix(prefix)
        if tail != value.lower() and len(tail) == 12 and all(c in "0123456789abcdef" for c in tail):
            return int(tail, 16)
    return None


def format_coding(content_type: str) -> dict:
    return {"system": FORMAT_SYSTEM, "code": FORMAT_CODES.get(content_type, MIME_TYPE_SUFFICIENT)}


def document_reference(document, patient_id: str, *, for_practitioner: bool) -> dict:
    """One document's metadata. Its content is the Binary of the same id (read traced on its own)."""
    kind = document.document_type
    labels = []
    if document.is_held:
        labels.append(HOLD_CODE)
    if document.hidden_from_representatives:
        labels.append(MINORS_SECRET_CODE)
    if document.masked_at is not None and not for_practitioner:
        labels.append(MASKED_CODE)  # practitioners are never told of masks (A4)
    deposited = _instant(document.deposited_at)
    resource = {
        "resourceType": "DocumentReference",
        "id": str(document.pk),
        "masterIdentifier": {"system": URI_SYSTEM, "value": master_identifier(document.pk)},
        "identifier": [{"use": "official", "system": URI_SYSTEM, "value": entry_identifier(document.pk)}],
        "status": "current",
        "type": {"coding": [{"system": type_system(kind.code_system), "code": kind.code, "display": kind.label_fr}]},
        "category": [
            {"coding": [{"system": CLASS_SYSTEM, "code": kind.class_code, "display": kind.get_class_code_display()}]}
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": deposited,
        "description": document.title,
        # Confidentiality N for all; Carnet's visibility rules travel as TRE_A07 codes next to it.
        "securityLabel": [{"coding": [{"system": CONFIDENTIALITY_SYSTEM, "code": NORMAL_CONFIDENTIALITY}]}]
        + [{"coding": [{"system": TRE_A07_SYSTEM, "code": code}]} for code in labels],
        "content": [
            {
                "attachment": {
                    "contentType": document.content_type,
                    "url": f"Binary/{document.pk}",
                    "size": document.size,
                    "title": document.title,
                    "creation": deposited,
                },
                "format": format_coding(document.content_type),
            }
        ],
        "context": {"period": {"start": document.care_date.isoformat()}},
    }
    author = document.author_practitioner
    if author is not None:
        resource["author"] = [
            {
                "identifier": {"system": RPPS_SYSTEM, "value": author.national_id},
                "display": author.display_name,
            }
        ]
    return resource


def binary(document, data: bytes) -> dict:
    return {
        "resourceType": "Binary",
        "id": str(document.pk),
        "contentType": document.content_type,
        "data": base64.b64encode(data).decode("ascii"),
    }


_ACTION_CODES = {
    "open_record": "R",
    "open_document": "R",
    "lookup_profile": "E",
    "deposit_document": "C",
    "app_read": "R",
}


def _app_agent(entry: TrailEntry) -> list[dict]:
    """The connected app that acted for the patient (issue 17), as a second agent; none for other entries."""
    if not entry.client_app:
        return []
    return [{"type": {"text": "Application"}, "who": {"display": entry.client_app}, "requestor": False}]


def audit_event(entry: TrailEntry, patient_id: str) -> dict:
    """A trail entry (T1) as an AuditEvent; emergency access carries the break-glass purpose of use (A7)."""
    emergency = entry.mode in EMERGENCY_MODES
    purpose = (
        {"system": ACT_REASON_SYSTEM, "code": "BTG", "display": "break the glass"}
        if emergency
        else {"system": ACT_REASON_SYSTEM, "code": "TREAT", "display": "treatment"}
    )
    agent: dict[str, Any] = {
        "type": {"text": entry.get_actor_kind_display()},
        "who": {"display": entry.actor_name},
        "name": entry.actor_name,
        "requestor": True,
    }
    if entry.actor_rpps:
        agent["who"]["identifier"] = {"system": RPPS_SYSTEM, "value": f"8{entry.actor_rpps}"}
    if entry.actor_profession:
        agent["role"] = [{"text": entry.actor_profession}]
    if entry.actor_kind == TrailEntry.ActorKind.PRACTITIONER:
        agent["purposeOfUse"] = [{"coding": [purpose]}]
    entity = [{"what": {"reference": f"Patient/{patient_id}"}, "type": {"code": "1", "display": "Person"}}]
    if entry.document_id:
        entity.append({"what": {"reference": f"DocumentReference/{entry.document_id}"}, "type": {"code": "2"}})
    resource = {
        "resourceType": "AuditEvent",
        "id": str(entry.pk),
        "type": {"system": DICOM_SYSTEM, "code": "110110", "display": "Patient Record"},
        "subtype": [{"system": ACTION_SYSTEM, "code": entry.action}],
        "action": _ACTION_CODES.get(entry.action, "U"),
        "recorded": _instant(entry.at),
        "outcome": "0" if entry.outcome == TrailEntry.Outcome.ALLOWED else "4",
        "purposeOfEvent": [{"coding": [purpose, {"system": MODE_SYSTEM, "code": entry.mode}]}],
        "agent": [agent, *_app_agent(entry)],
        "source": {"observer": {"display": "Carnet"}},
        "entity": entity,
    }
    if emergency and entry.justification:
        resource["outcomeDesc"] = entry.justification  # A7: the written justification of the break-glass
    return resource


def bundle(resources: list[dict], *, total: int, base: str, links: dict[str, str]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": [{"relation": relation, "url": url} for relation, url in links.items()],
        "entry": [
            {"fullUrl": f"{base}{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "business-rule",
    413: "too-costly",
    415: "not-supported",
    429: "throttled",
}


def operation_outcome(status_code: int, code: str, message: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": ISSUE_CODES.get(status_code, "processing"),
                "details": {"coding": [{"system": ERROR_SYSTEM, "code": code}], "text": message},
            }
        ],
    }


_DOCUMENT_SEARCH = [
    ("patient", "reference", "Patient id from a Patient search (required, or patient.identifier)"),
    ("patient.identifier", "token", f"{NIR_SYSTEM}|<NIR>: with patient for practitioners (A11), alone for patients"),
    ("status", "token", "current (every document); superseded and entered-in-error match none"),
    ("type", "token", "JDV_J66 type code, [system|]code, OR-list"),
    ("category", "token", f"class code (TRE_A03, {CLASS_SYSTEM}), [system|]code, OR-list"),
    ("date", "date", "deposit instant; any precision; eq ne gt lt ge le sa eb"),
    ("creation", "date", "the deposit instant too: Carnet does not record when the file was written"),
    ("period", "date", "care date (context.period.start)"),
    ("author.given", "string", "author's first name (prefix; :exact, :contains)"),
    ("author.family", "string", "author's last name (prefix; :exact, :contains)"),
    ("security-label", "token", "N (v3-Confidentiality) or TRE_A07 codes"),
    ("identifier", "token", "masterIdentifier or identifier (urn:ietf:rfc:3986|urn:uuid:…)"),
    ("format", "token", "IHE format code (TRE_A11)"),
]
_REFUSED = "setting, facility, event and related are refused with a 400: Carnet does not record them."


def capability_statement(base: str) -> dict:
    """What this server offers, exactly: bearer API tokens and SMART on FHIR apps; no claim of MHD/PDSm conformance."""

    def search(name: str, kind: str, doc: str) -> dict:
        return {"name": name, "type": kind, "documentation": doc}

    common = [
        search("_count", "number", "page size, 0 to 100 (0: the total only)"),
        search("_summary", "token", "count"),
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": timezone.localdate().isoformat(),
        "publisher": "Carnet",
        "kind": "instance",
        "software": {"name": "Carnet"},
        "implementation": {"description": "Carnet FHIR R4 interface", "url": base.rstrip("/")},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "application/fhir+xml"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Bearer API tokens (created in the portals). Every read goes through Carnet's access rules, "
                    "is traced and, for practitioners, notified to the patient. Unknown search parameters are "
                    "refused under Prefer: handling=strict, and left out of the self link otherwise."
                ),
                "security": capability_security(base),
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [
                            {"code": "read"},
                            {
                                "code": "search-type",
                                "documentation": (
                                    "Search with POST [base]/Patient/_search and a form-encoded body "
                                    "(application/x-www-form-urlencoded): the NIR and the birth date then stay "
                                    "out of URLs and logs. GET [base]/Patient?… takes the same parameters."
                                ),
                            },
                        ],
                        "searchParam": [
                            search("identifier", "token", f"{NIR_SYSTEM}|<NIR>, required with birthdate (A11)"),
                            search("birthdate", "date", "YYYY-MM-DD, required with identifier (A11)"),
                        ],
                    },
                    {
                        "type": "DocumentReference",
                        "interaction": [
                            {"code": "read"},
                            {"code": "search-type", "documentation": f"GET or POST _search (IHE ITI-67). {_REFUSED}"},
                            {"code": "create"},
                        ],
                        "searchParam": [search(*item) for item in _DOCUMENT_SEARCH] + common,
                    },
                    {"type": "Binary", "interaction": [{"code": "read"}]},
                    {
                        "type": "AuditEvent",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [search("patient", "reference", "Patient id (patient, treating doctor)")],
                    },
                ],
            }
        ],
    }


def max_body_bytes() -> int:
    """The largest JSON body a create may send: the practitioners' file limit in base64, plus metadata."""
    return settings.CARNET_PRACTITIONER_UPLOAD_MAX_BYTES * 4 // 3 + 64 * 1024
