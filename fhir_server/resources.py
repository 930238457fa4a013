"""Carnet's objects as FHIR R4 resources (plain dicts, ``application/fhir+json``).

Patient, Practitioner, DocumentReference, Binary, AuditEvent, Bundle, OperationOutcome and the
CapabilityStatement.

Codes follow the French document-sharing framework (ANS PDSm, FR Core) where it has them: the INS NIR typed
``INS-NIR`` under its OID (I3) in production, under the INS test OID and type ``INS-NIR-TEST`` otherwise
(``CARNET_INS_PRODUCTION``); JDV_J66 type codes (LOINC, or TRE_A05 by its OID); JDV_J57 class codes under
TRE_A03; TRE_A07 visibility codes in ``securityLabel`` next to the v3 confidentiality; TRE_R02 / TRE_A00 care
setting codes; the RPPS national practitioner identifier (IDNPS); IHE BALP and ITI event codes in AuditEvent.
The trail's own action names and the JDV_J38 access modes go under Carnet's ``urn:carnet:fhir:`` systems.
"""

import base64
from typing import Any

from django.conf import settings
from django.utils import timezone, translation

from access_control.models import TrailEntry
from access_control.rules import EMERGENCY_MODES
from fhir_server.security import capability_security
from records.models import DocumentType

FHIR_VERSION = "4.0.1"
NIR_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"  # I3, production INS-NIR
NIR_TEST_SYSTEM = "urn:oid:1.2.250.1.213.1.4.10"  # the INS test OID (FR Core INS-NIR-TEST)
IDENTIFIER_TYPE_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
IDENTITY_RELIABILITY_URL = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability"
IDENTITY_STATUS_SYSTEM = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status"
BIRTH_PLACE_URL = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
INSEE_CODE_URL = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
COMMUNE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
BIRTH_GIVEN_NAMES_URL = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name"
PROFESSION_SYSTEM = "urn:oid:1.2.250.1.71.1.2.7"  # TRE_G15-ProfessionSante
# Care setting (PDSm: facilityType and practiceSetting): TRE_R02-SecteurActivite when a practitioner wrote the
# document, TRE_A00-ProducteurDocNonPS when the patient did (EXPPAT_1 the patient, EXPPAT_2 a representative).
SECTOR_SYSTEM = "urn:oid:1.2.250.1.71.4.2.4"
SECTOR_SYSTEMS = frozenset(
    {SECTOR_SYSTEM, "https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite"}
)
NON_PS_SYSTEM = "urn:oid:1.2.250.1.213.1.1.4.6"
PATIENT_PRODUCER = "EXPPAT_1"
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
RESTRICTED_CONFIDENTIALITY = "R"  # a document some readers may not see: held, minor's secret, masked
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
AUDIT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-type"
IHE_EVENT_SYSTEM = "urn:ihe:event-type-code"
INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
STATUS_SYSTEM = "http://hl7.org/fhir/document-reference-status"
# Canonical URLs of the capability statements Carnet meets (CapabilityStatement.instantiates).
MHD_RECIPIENT = "https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentRecipient"
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


def ins_production() -> bool:
    """Whether NIRs are real INS (production): then, and only then, they go under the INS-NIR OID."""
    return bool(getattr(settings, "CARNET_INS_PRODUCTION", False))


def nir_system() -> str:
    """The OID Carnet publishes NIRs under, and expects in a search: the INS test OID outside production."""
    return NIR_SYSTEM if ins_production() else NIR_TEST_SYSTEM


def accepts_nir_system(system: str | None) -> bool:
    """Whether a search may name NIRs under ``system``.

    The published OID, and outside production the INS-NIR OID too (practice software configured for
    production, pointed at a test platform).
    """
    return system == nir_system() or (system == NIR_SYSTEM and not ins_production())


def patient(profile, resource_id: str) -> dict:
    """A profile as an FR Core Patient: INS identifier typed, identity status, birth place, FR Core names."""
    first_names = profile.first_names.split()
    official: dict[str, Any] = {"use": "official", "family": profile.birth_name, "given": first_names[:1]}
    if first_names:  # FR Core: the first first name in given, every first name (as on the INS) in the extension
        official["extension"] = [{"url": BIRTH_GIVEN_NAMES_URL, "valueString": " ".join(first_names)}]
    names = [official]
    if profile.usual_name:
        names.append({"use": "usual", "family": profile.usual_name, "given": first_names[:1]})
    type_code = "INS-NIR" if ins_production() else "INS-NIR-TEST"
    extensions: list[dict[str, Any]] = [
        {
            "url": IDENTITY_RELIABILITY_URL,
            "extension": [
                {
                    "url": "identityStatus",
                    "valueCoding": {
                        "system": IDENTITY_STATUS_SYSTEM,
                        "code": profile.identity_status,
                        "display": str(profile.get_identity_status_display()),
                    },
                }
            ],
        }
    ]
    if profile.birth_place_code:
        extensions.append(
            {
                "url": BIRTH_PLACE_URL,
                "valueAddress": {
                    "extension": [
                        {
                            "url": INSEE_CODE_URL,
                            "valueCoding": {"system": COMMUNE_SYSTEM, "code": profile.birth_place_code},
                        }
                    ]
                },
            }
        )
    return {
        "resourceType": "Patient",
        "id": resource_id,
        "extension": extensions,
        "identifier": [
            {
                "use": "official",
                "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": type_code}]},
                "system": nir_system(),
                "value": profile.nir,
            }
        ],
        "name": names,
        "gender": {"M": "male", "F": "female"}.get(profile.sex, "unknown"),
        "birthDate": profile.birth_date.isoformat(),
    }


def practitioner(practitioner) -> dict:
    """A practitioner's directory entry (the public RPPS directory): names, national id, profession; no more."""
    name: dict[str, Any] = {"family": practitioner.last_name, "given": [practitioner.first_name]}
    if practitioner.title:
        name["prefix"] = [practitioner.title]
    return {
        "resourceType": "Practitioner",
        "id": str(practitioner.pk),
        "identifier": [
            {
                "use": "official",
                "type": {"coding": [{"system": IDENTIFIER_TYPE_SYSTEM, "code": "IDNPS"}]},
                "system": RPPS_SYSTEM,
                "value": practitioner.national_id,
            }
        ],
        "name": [name],
        "qualification": [
            {
                "code": {
                    "coding": [
                        {
                            "system": PROFESSION_SYSTEM,
                            "code": practitioner.profession.code,
                            "display": practitioner.profession.label_fr,
                        }
                    ]
                }
            }
        ],
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


def confidentiality(document, *, for_practitioner: bool) -> str:
    """v3 confidentiality: R (restricted) when some readers may not see the document, N (normal) otherwise.

    Held (A8) and minor's secret (A9) documents are restricted for everyone; a masked one (A4) only in the
    patient's view: practitioners are never told of masks.
    """
    if document.is_held or document.hidden_from_representatives:
        return RESTRICTED_CONFIDENTIALITY
    if document.masked_at is not None and not for_practitioner:
        return RESTRICTED_CONFIDENTIALITY
    return NORMAL_CONFIDENTIALITY


def sha1_base64(hex_digest: str) -> str:
    """FHIR's Attachment.hash: the SHA-1 of the content, as base64Binary (not the hexadecimal Carnet stores)."""
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def setting_codes(document) -> tuple[dict, dict] | None:
    """``context.facilityType`` and ``context.practiceSetting``; None when the author gave none."""
    if document.author_kind == "patient":
        coding = {"system": NON_PS_SYSTEM, "code": document.facility_type or PATIENT_PRODUCER}
        setting = {"system": NON_PS_SYSTEM, "code": document.practice_setting or PATIENT_PRODUCER}
        return {"coding": [coding]}, {"coding": [setting]}
    if not (document.facility_type and document.practice_setting):
        return None
    return (
        {"coding": [{"system": SECTOR_SYSTEM, "code": document.facility_type}]},
        {"coding": [{"system": SECTOR_SYSTEM, "code": document.practice_setting}]},
    )


_CLASS_LABELS: dict[str | None, dict[str, str]] = {}


def class_labels() -> dict[str, str]:
    """Class code -> ``DocumentType.get_class_code_display()``, in the active language.

    Django's version translates the whole list of choices on every call (a fifth of a FHIR listing's time,
    bench/README.md); the labels are worked out once per language and process.
    """
    language = translation.get_language()
    labels = _CLASS_LABELS.get(language)
    if labels is None:
        choices = DocumentType._meta.get_field("class_code").flatchoices
        labels = _CLASS_LABELS[language] = {value: str(label) for value, label in choices}
    return labels


def class_label(code: str) -> str:
    """``DocumentType.get_class_code_display()``: the label, or the code itself when it has none."""
    return class_labels().get(code, code)


# What ``document_references`` reads, for ``QuerySet.values()`` on a listing of documents.
DOCUMENT_COLUMNS = (
    "id",
    "title",
    "status",
    "unique_id",
    "replaces_id",
    "content_type",
    "size",
    "sha1",
    "care_date",
    "deposited_at",
    "author_kind",
    "facility_type",
    "practice_setting",
    "held_until",
    "hold_released_at",
    "hidden_from_representatives",
    "masked_at",
    "document_type__code",
    "document_type__code_system",
    "document_type__label_fr",
    "document_type__class_code",
    "author_practitioner_id",
    "author_practitioner__rpps",
    "author_practitioner__title",
    "author_practitioner__first_name",
    "author_practitioner__last_name",
)


def document_references(rows: list[dict[str, Any]], patient_id: str, *, for_practitioner: bool) -> list[dict]:
    """``document_reference`` for ``values(*DOCUMENT_COLUMNS)`` rows, without model instances.

    The same resources, key for key and in the same order, built straight from the rows: a listing builds fifty
    of them (bench/README.md, api.py). tests/test_fhir_listing.py compares the listing with the one built by
    ``document_reference`` from the model instances, byte for byte, over every kind of document.
    """
    zone = timezone.get_current_timezone()
    class_names = class_labels()
    subject = {"reference": f"Patient/{patient_id}"}
    resources = []
    for row in rows:
        pk = row["id"]
        held = row["held_until"] is not None and row["hold_released_at"] is None  # Document.is_held
        secret = row["hidden_from_representatives"]
        masked = row["masked_at"] is not None and not for_practitioner  # practitioners are never told (A4)
        restricted = held or secret or masked  # confidentiality()
        deposited = row["deposited_at"].astimezone(zone).isoformat(timespec="seconds")  # _instant()
        content_type = row["content_type"]
        attachment: dict[str, Any] = {
            "contentType": content_type,
            "language": "fr-FR",
            "url": f"Binary/{pk}",
            "size": row["size"],
            "title": row["title"],
            "creation": deposited,
        }
        if row["sha1"]:
            attachment["hash"] = sha1_base64(row["sha1"])
        context: dict[str, Any] = {"period": {"start": row["care_date"].isoformat()}}
        facility, practice = row["facility_type"], row["practice_setting"]
        if row["author_kind"] == "patient":
            context["facilityType"] = {"coding": [{"system": NON_PS_SYSTEM, "code": facility or PATIENT_PRODUCER}]}
            context["practiceSetting"] = {"coding": [{"system": NON_PS_SYSTEM, "code": practice or PATIENT_PRODUCER}]}
        elif facility and practice:
            context["facilityType"] = {"coding": [{"system": SECTOR_SYSTEM, "code": facility}]}
            context["practiceSetting"] = {"coding": [{"system": SECTOR_SYSTEM, "code": practice}]}
        labels = [
            {
                "coding": [
                    {
                        "system": CONFIDENTIALITY_SYSTEM,
                        "code": RESTRICTED_CONFIDENTIALITY if restricted else NORMAL_CONFIDENTIALITY,
                    }
                ]
            }
        ]
        if held:
            labels.append({"coding": [{"system": TRE_A07_SYSTEM, "code": HOLD_CODE}]})
        if secret:
            labels.append({"coding": [{"system": TRE_A07_SYSTEM, "code": MINORS_SECRET_CODE}]})
        if masked:
            labels.append({"coding": [{"system": TRE_A07_SYSTEM, "code": MASKED_CODE}]})
        class_code = row["document_type__class_code"]
        resource: dict[str, Any] = {
            "resourceType": "DocumentReference",
            "id": str(pk),
            "masterIdentifier": {"system": URI_SYSTEM, "value": row["unique_id"] or master_identifier(pk)},
            "identifier": [{"use": "official", "system": URI_SYSTEM, "value": entry_identifier(pk)}],
            "status": row["status"],
            "type": {
                "coding": [
                    {
                        "system": type_system(row["document_type__code_system"]),
                        "code": row["document_type__code"],
                        "display": row["document_type__label_fr"],
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {"system": CLASS_SYSTEM, "code": class_code, "display": class_names.get(class_code, class_code)}
                    ]
                }
            ],
            "subject": dict(subject),
            "date": deposited,
            "custodian": {"display": "Carnet"},
            "description": row["title"],
            "securityLabel": labels,
            "content": [{"attachment": attachment, "format": format_coding(content_type)}],
            "context": context,
        }
        if row["replaces_id"]:
            resource["relatesTo"] = [
                {"code": "replaces", "target": {"reference": f"DocumentReference/{row['replaces_id']}"}}
            ]
        author_id = row["author_practitioner_id"]
        if author_id is not None:
            title = row["author_practitioner__title"]
            resource["author"] = [
                {
                    "reference": f"Practitioner/{author_id}",
                    "identifier": {"system": RPPS_SYSTEM, "value": f"8{row['author_practitioner__rpps']}"},  # I2
                    # Practitioner.display_name
                    "display": f"{f'{title} ' if title else ''}"
                    f"{row['author_practitioner__first_name']} {row['author_practitioner__last_name']}",
                }
            ]
        else:
            resource["author"] = [{"reference": f"Patient/{patient_id}"}]
        resources.append(resource)
    return resources


def document_reference(document, patient_id: str, *, for_practitioner: bool) -> dict:
    """One document's metadata (IHE MHD Comprehensive, ANS PDSm). Its content is the Binary of the same id."""
    kind = document.document_type
    labels = []
    if document.is_held:
        labels.append(HOLD_CODE)
    if document.hidden_from_representatives:
        labels.append(MINORS_SECRET_CODE)
    if document.masked_at is not None and not for_practitioner:
        labels.append(MASKED_CODE)  # practitioners are never told of masks (A4)
    deposited = _instant(document.deposited_at)
    attachment: dict[str, Any] = {
        "contentType": document.content_type,
        "language": "fr-FR",
        "url": f"Binary/{document.pk}",
        "size": document.size,
        "title": document.title,
        # When the file was written is not recorded: the deposit instant stands for it (docs/api.md).
        "creation": deposited,
    }
    if document.sha1:
        attachment["hash"] = sha1_base64(document.sha1)
    context: dict[str, Any] = {"period": {"start": document.care_date.isoformat()}}
    settings_codes = setting_codes(document)
    if settings_codes is not None:
        context["facilityType"], context["practiceSetting"] = settings_codes
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": str(document.pk),
        "masterIdentifier": {"system": URI_SYSTEM, "value": document.unique_id or master_identifier(document.pk)},
        "identifier": [{"use": "official", "system": URI_SYSTEM, "value": entry_identifier(document.pk)}],
        "status": document.status,
        "type": {"coding": [{"system": type_system(kind.code_system), "code": kind.code, "display": kind.label_fr}]},
        "category": [
            {"coding": [{"system": CLASS_SYSTEM, "code": kind.class_code, "display": class_label(kind.class_code)}]}
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": deposited,
        "custodian": {"display": "Carnet"},
        "description": document.title,
        "securityLabel": [
            {
                "coding": [
                    {
                        "system": CONFIDENTIALITY_SYSTEM,
                        "code": confidentiality(document, for_practitioner=for_practitioner),
                    }
                ]
            }
        ]
        + [{"coding": [{"system": TRE_A07_SYSTEM, "code": code}]} for code in labels],
        "content": [{"attachment": attachment, "format": format_coding(document.content_type)}],
        "context": context,
    }
    if document.replaces_id:
        resource["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{document.replaces_id}"}}
        ]
    author = document.author_practitioner
    if author is not None:
        resource["author"] = [
            {
                "reference": f"Practitioner/{author.pk}",
                "identifier": {"system": RPPS_SYSTEM, "value": author.national_id},
                "display": author.display_name,
            }
        ]
    else:
        resource["author"] = [{"reference": f"Patient/{patient_id}"}]
    return resource


def binary(document, data: bytes) -> dict:
    return {
        "resourceType": "Binary",
        "id": str(document.pk),
        "contentType": document.content_type,
        "data": base64.b64encode(data).decode("ascii"),
    }


_ACTION_CODES = {
    "open_record": "E",
    "open_document": "R",
    "lookup_profile": "E",
    "deposit_document": "C",
    "supersede_document": "U",
    "app_read": "R",
}
# The IHE transaction (and FHIR interaction) each trail action is the equivalent of, whichever way it was made
# (portal, REST or FHIR: the trail does not record the channel).
_ITI_EVENTS = {
    "open_record": ("ITI-67", "Find Document References", "search"),
    "open_document": ("ITI-68", "Retrieve Document", "read"),
    "deposit_document": ("ITI-65", "Provide Document Bundle", "create"),
    "supersede_document": ("ITI-65", "Provide Document Bundle", "patch"),
    "lookup_profile": ("ITI-78", "Mobile Patient Demographics Query", "search"),
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
    subtype = [{"system": ACTION_SYSTEM, "code": entry.action}]
    event = _ITI_EVENTS.get(entry.action)
    if event is not None:  # IHE BALP: a RESTful event, its ITI transaction and FHIR interaction as subtypes
        code, display, interaction = event
        event_type = {"system": AUDIT_TYPE_SYSTEM, "code": "rest", "display": "Restful Operation"}
        subtype = [
            {"system": IHE_EVENT_SYSTEM, "code": code, "display": display},
            {"system": INTERACTION_SYSTEM, "code": interaction},
            *subtype,
        ]
    else:
        event_type = {"system": DICOM_SYSTEM, "code": "110110", "display": "Patient Record"}
    resource = {
        "resourceType": "AuditEvent",
        "id": str(entry.pk),
        "type": event_type,
        "subtype": subtype,
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


def information_outcome(message: str) -> dict:
    """An OperationOutcome that only informs (a transaction entry's or a PATCH's answer)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": message}],
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


def _document_search() -> list[tuple[str, str, str]]:
    nir = nir_system()
    return [
        ("patient", "reference", "Patient id from a Patient search (required, or patient.identifier)"),
        ("patient.identifier", "token", f"{nir}|<NIR>: with patient for practitioners (A11), alone for patients"),
        ("status", "token", "current or superseded (replaced or withdrawn by its author); entered-in-error: none"),
        ("type", "token", "JDV_J66 type code, [system|]code, OR-list"),
        ("category", "token", f"class code (TRE_A03, {CLASS_SYSTEM}), [system|]code, OR-list"),
        ("date", "date", "deposit instant; any precision; eq ne gt lt ge le sa eb"),
        ("creation", "date", "the deposit instant too: Carnet does not record when the file was written"),
        ("period", "date", "care date (context.period.start)"),
        ("author.given", "string", "author's first name (prefix; :exact, :contains)"),
        ("author.family", "string", "author's last name (prefix; :exact, :contains)"),
        ("security-label", "token", "N or R (v3-Confidentiality), or TRE_A07 codes"),
        ("identifier", "token", "masterIdentifier or identifier (urn:ietf:rfc:3986|…)"),
        ("format", "token", "IHE format code (TRE_A11)"),
        ("setting", "token", f"practiceSetting: TRE_R02 ({SECTOR_SYSTEM}) or TRE_A00 ({NON_PS_SYSTEM})"),
        ("facility", "token", "facilityType: TRE_R02 or TRE_A00"),
        ("relatesto", "reference", "DocumentReference/<id>: the documents replacing it"),
    ]


_REFUSED = "event and related are refused with a 400: Carnet does not record them."


def capability_statement(base: str) -> dict:
    """What this server offers, exactly, the statements it meets (``instantiates``) and how clients sign in."""

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
        # IHE MHD Document Recipient (ITI-65). Not the Document Responder nor PDSm's document-sharing manager:
        # both also require List (ITI-66, submission sets), which Carnet does not keep (docs/api.md).
        "instantiates": [MHD_RECIPIENT],
        "software": {"name": "Carnet"},
        "implementation": {"description": "Carnet FHIR R4 interface", "url": base.rstrip("/")},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "application/fhir+xml"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Every read goes through Carnet's access rules, is traced and, for practitioners, notified to "
                    "the patient. Unknown search parameters are refused under Prefer: handling=strict, and left "
                    "out of the self link otherwise."
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
                            search("identifier", "token", f"{nir_system()}|<NIR>, required with birthdate (A11)"),
                            search("birthdate", "date", "YYYY-MM-DD, required with identifier (A11)"),
                        ],
                    },
                    {"type": "Practitioner", "interaction": [{"code": "read"}]},
                    {
                        "type": "DocumentReference",
                        "interaction": [
                            {"code": "read"},
                            {"code": "search-type", "documentation": f"GET or POST _search (IHE ITI-67). {_REFUSED}"},
                            {"code": "create"},
                            {
                                "code": "patch",
                                "documentation": (
                                    "FHIRPath Patch (Parameters): replace DocumentReference.status with "
                                    "superseded, by the document's author (PDSm metadata update)."
                                ),
                            },
                        ],
                        "searchParam": [search(*item) for item in _document_search()] + common,
                    },
                    {"type": "Binary", "interaction": [{"code": "read"}]},
                    {
                        "type": "AuditEvent",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [search("patient", "reference", "Patient id (patient, treating doctor)")],
                    },
                ],
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": (
                            "IHE ITI-65 Provide Document Bundle: a SubmissionSet List, DocumentReferences and "
                            "their Binaries, all deposited or none; relatesTo replaces supersedes a document."
                        ),
                    }
                ],
            }
        ],
    }


def max_body_bytes() -> int:
    """The largest JSON body a create may send: the practitioners' file limit in base64, plus metadata."""
    return settings.CARNET_PRACTITIONER_UPLOAD_MAX_BYTES * 4 // 3 + 64 * 1024
