"""The FHIR R4 interface under the same rules; every resource received is validated with fhir.resources."""

import base64
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from fhir.resources.R4B import get_fhir_model_class
from rest_framework.test import APIClient

from access_control.models import TrailEntry
from access_control.rules import Action
from fhir_server.resources import ACT_REASON_SYSTEM, NIR_SYSTEM, TRE_A07_SYSTEM
from notifications.models import Notice
from records.models import Document
from records.personas import minimal_pdf
from tests.api_fixtures import client_for, open_handle

pytestmark = pytest.mark.django_db
FHIR_JSON = "application/fhir+json"


def valid(response, resource_type: str | None = None) -> dict:
    """The body, after checking the media type and validating it with the FHIR R4 (R4B) models."""
    assert response["Content-Type"].startswith(FHIR_JSON), response["Content-Type"]
    body = response.json()
    get_fhir_model_class(body["resourceType"]).model_validate(body)
    for entry in body.get("entry", []):
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    if resource_type:
        assert body["resourceType"] == resource_type, body
    return body


def outcome_code(response) -> str:
    body = valid(response, "OperationOutcome")
    return body["issue"][0]["details"]["coding"][0]["code"]


def patient_search(client, profile, birthdate=None):
    return client.get(
        "/fhir/Patient",
        {"identifier": f"{NIR_SYSTEM}|{profile.nir}", "birthdate": birthdate or profile.birth_date.isoformat()},
    )


def patient_id(client, profile) -> str:
    bundle = valid(patient_search(client, profile), "Bundle")
    assert bundle["total"] == 1, bundle
    return bundle["entry"][0]["resource"]["id"]


def references(client, pid, **params):
    return client.get("/fhir/DocumentReference", {"patient": pid, **params})


def label_codes(resource) -> set[str]:
    return {coding["code"] for label in resource.get("securityLabel", []) for coding in label["coding"]}


def descriptions(bundle) -> set[str]:
    return {entry["resource"]["description"] for entry in bundle["entry"]}


def test_capability_statement_needs_no_token():
    body = valid(APIClient().get("/fhir/metadata"), "CapabilityStatement")
    assert body["fhirVersion"] == "4.0.1"
    rest = body["rest"][0]
    assert {r["type"] for r in rest["resource"]} == {
        "Patient",
        "Practitioner",
        "DocumentReference",
        "Binary",
        "AuditEvent",
    }
    assert [i["code"] for i in rest["interaction"]] == ["transaction"]  # ITI-65 at [base]
    documents = next(r for r in rest["resource"] if r["type"] == "DocumentReference")
    assert {i["code"] for i in documents["interaction"]} == {"read", "search-type", "create", "patch"}
    # Only the statement Carnet meets: the MHD Document Recipient (ITI-65), not the Responder (needs ITI-66).
    assert body["instantiates"] == ["https://profiles.ihe.net/ITI/MHD/CapabilityStatement/IHE.MHD.DocumentRecipient"]
    # OAuth is claimed exactly as far as it exists: SMART on FHIR for connected patient apps (tests/test_smart_apps.py).
    assert [s["coding"][0]["code"] for s in rest["security"]["service"]] == ["SMART-on-FHIR"]


def test_patient_search_needs_both_identity_traits__A11(personas):
    client = client_for(personas.david)
    response = client.get("/fhir/Patient", {"identifier": f"{NIR_SYSTEM}|{personas.alice.nir}"})
    assert response.status_code == 400 and outcome_code(response) == "identifier_and_birthdate_required"
    name_only = client.get("/fhir/Patient", {"name": "MARTIN"})
    assert name_only.status_code == 400


def test_patient_search_finds_by_nir_and_birthdate_and_hides_refusals__A11_A5(personas):
    patient = valid(patient_search(client_for(personas.david), personas.alice), "Bundle")["entry"][0]["resource"]
    assert patient["identifier"][0]["value"] == personas.alice.nir
    assert patient["birthDate"] == "1985-03-12" and patient["gender"] == "female"
    blocked = valid(patient_search(client_for(personas.hugo), personas.alice), "Bundle")
    wrong_date = valid(patient_search(client_for(personas.david), personas.alice, "1985-03-13"), "Bundle")
    assert blocked["total"] == wrong_date["total"] == 0  # no oracle


def test_patients_are_identified_by_the_ins_nir_oid__I3(personas, settings):
    """I3: the NIR's INS OID, written out here rather than taken from the code under test.

    FR Core: the identifier is typed; demo and test NIRs go under the INS test OID (``INS-NIR-TEST``), and the
    production OID (``INS-NIR``) is used only when the platform is configured for production.
    """
    client = client_for(personas.david)
    found = client.get(
        "/fhir/Patient",
        {"identifier": f"urn:oid:1.2.250.1.213.1.4.8|{personas.alice.nir}", "birthdate": "1985-03-12"},
    )
    patient = valid(found, "Bundle")["entry"][0]["resource"]
    assert patient["identifier"][0]["system"] == "urn:oid:1.2.250.1.213.1.4.10"
    assert patient["identifier"][0]["type"]["coding"][0]["code"] == "INS-NIR-TEST"
    test_oid = client.get(
        "/fhir/Patient",
        {"identifier": f"urn:oid:1.2.250.1.213.1.4.10|{personas.alice.nir}", "birthdate": "1985-03-12"},
    )
    assert valid(test_oid, "Bundle")["total"] == 1
    settings.CARNET_INS_PRODUCTION = True
    found = client.get(
        "/fhir/Patient",
        {"identifier": f"urn:oid:1.2.250.1.213.1.4.8|{personas.alice.nir}", "birthdate": "1985-03-12"},
    )
    identifier = valid(found, "Bundle")["entry"][0]["resource"]["identifier"][0]
    assert identifier["system"] == "urn:oid:1.2.250.1.213.1.4.8"
    assert identifier["type"]["coding"][0]["code"] == "INS-NIR"
    in_production = client.get(
        "/fhir/Patient",
        {"identifier": f"urn:oid:1.2.250.1.213.1.4.10|{personas.alice.nir}", "birthdate": "1985-03-12"},
    )
    assert in_production.status_code == 400  # a test NIR is never looked up in production
    # A NIA (the OID of a temporary identifier) is not a NIR: refused, not looked up as one.
    nia = client.get(
        "/fhir/Patient",
        {"identifier": f"urn:oid:1.2.250.1.213.1.4.9|{personas.alice.nir}", "birthdate": "1985-03-12"},
    )
    assert nia.status_code == 400
    assert "urn:oid:1.2.250.1.213.1.4.8" in nia.content.decode()


def test_document_search_opens_the_record_traced_and_notified__T1_N1(personas):
    client = client_for(personas.david)
    pid = patient_id(client, personas.bernard)
    bundle = valid(references(client, pid), "Bundle")
    assert descriptions(bundle) == {"Bilan lipidique"}
    assert TrailEntry.objects.filter(
        profile=personas.bernard, action=Action.OPEN_RECORD, actor_practitioner=personas.david, outcome="allowed"
    ).exists()
    assert Notice.objects.filter(profile=personas.bernard, kind="consultation", practitioner=personas.david).exists()


def test_masked_documents_are_absent_and_never_labelled_for_practitioners__A4(personas):
    client = client_for(personas.david)
    bundle = valid(references(client, patient_id(client, personas.alice)), "Bundle")
    assert "Synthèse psychiatrique" not in descriptions(bundle) and bundle["total"] == 7
    labels = [e["resource"].get("securityLabel", []) for e in bundle["entry"]]
    assert all("MASQUE_PS" not in str(label) for label in labels)


def test_document_search_filters_by_type_category_and_date(personas):
    client = client_for(personas.claire)
    pid = patient_id(client, personas.alice)
    by_type = valid(references(client, pid, type="http://loinc.org|11488-4"), "Bundle")
    assert descriptions(by_type) == {"Consultation de cardiologie", "Consultation de remplacement"}
    by_category = valid(references(client, pid, category="42"), "Bundle")
    assert descriptions(by_category) == {"Ordonnance — traitement de fond", "Prescription de rééducation du genou"}
    assert valid(references(client, pid, date="le2000-01-01"), "Bundle")["total"] == 0
    assert valid(references(client, pid, date="ge2000-01-01", _count=3), "Bundle")["total"] == 8
    paged = valid(references(client, pid, _count=3), "Bundle")
    assert len(paged["entry"]) == 3 and any(link["relation"] == "next" for link in paged["link"])
    bad = references(client, pid, date="xx2024-01-01")
    assert bad.status_code == 400 and outcome_code(bad) == "invalid"


def test_read_and_binary_open_the_document_traced__T1(personas):
    client = client_for(personas.david)
    pid = patient_id(client, personas.bernard)
    entry = valid(references(client, pid), "Bundle")["entry"][0]["resource"]
    document = valid(client.get(f"/fhir/DocumentReference/{entry['id']}"), "DocumentReference")
    assert document["type"]["coding"][0]["system"] == "http://loinc.org"
    raw = client.get(f"/fhir/Binary/{entry['id']}", HTTP_ACCEPT="application/pdf")
    assert raw.status_code == 200 and raw["Content-Type"] == "application/pdf"
    assert b"".join(raw.streaming_content).startswith(b"%PDF")
    binary = valid(client.get(f"/fhir/Binary/{entry['id']}", HTTP_ACCEPT=FHIR_JSON), "Binary")
    assert base64.b64decode(binary["data"]).startswith(b"%PDF")
    opened = TrailEntry.objects.filter(action=Action.OPEN_DOCUMENT, document_id=int(entry["id"]), outcome="allowed")
    assert opened.count() == 3


def test_reading_a_masked_document_is_404__A4(personas):
    client = client_for(personas.david)
    references(client, patient_id(client, personas.alice))
    masked = Document.objects.get(profile=personas.alice, title="Synthèse psychiatrique")
    response = client.get(f"/fhir/DocumentReference/{masked.pk}")
    assert response.status_code == 404 and outcome_code(response) == "not_found"


def _document_reference(pid: str, *, title: str, labels=()) -> dict:
    resource = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11502-2"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(minimal_pdf(title, ["Résultats."])).decode(),
                    "title": "resultats.pdf",
                }
            }
        ],
        "context": {"period": {"start": "2024-05-02"}},
    }
    if labels:
        resource["securityLabel"] = [{"coding": [{"system": TRE_A07_SYSTEM, "code": code}]} for code in labels]
    get_fhir_model_class("DocumentReference").model_validate(resource)  # what we send is valid too
    return resource


def test_create_deposits_with_a_hold_hidden_from_the_patient__A8_A10(personas):
    client = client_for(personas.david)
    pid = patient_id(client, personas.alice)
    body = _document_reference(pid, title="Bilan à annoncer", labels=["INVISIBLE_PATIENT"])
    response = client.post("/fhir/DocumentReference", body, format="json")
    assert response.status_code == 201, response.content
    created = valid(response, "DocumentReference")
    assert response["Location"].endswith(f"/fhir/DocumentReference/{created['id']}")
    assert "INVISIBLE_PATIENT" in label_codes(created)
    document = Document.objects.get(pk=created["id"])
    assert document.is_held and str(document.care_date) == "2024-05-02"
    alice = client_for(personas.alice.user)
    mine = valid(references(alice, patient_id(alice, personas.alice)), "Bundle")
    assert "Bilan à annoncer" not in descriptions(mine)


def test_create_refuses_an_incomplete_resource_and_a_read_token(personas):
    client = client_for(personas.david)
    pid = patient_id(client, personas.bernard)
    response = client.post("/fhir/DocumentReference", {"resourceType": "DocumentReference"}, format="json")
    assert response.status_code == 400 and outcome_code(response) == "invalid"
    reader = client_for(personas.david, scope="read")
    body = _document_reference(patient_id(reader, personas.bernard), title="Lecture seule")
    refused = reader.post("/fhir/DocumentReference", body, format="json")
    assert refused.status_code == 403 and outcome_code(refused) == "insufficient_scope"
    assert pid


def test_audit_events_for_the_treating_doctor_with_break_glass__A6_A7_T3(personas):
    open_handle(client_for(personas.david), personas.alice, mode="bris_de_glace", justification="Inconsciente.")
    claire = client_for(personas.claire)
    bundle = valid(claire.get("/fhir/AuditEvent", {"patient": patient_id(claire, personas.alice)}), "Bundle")
    assert bundle["total"] > 0
    emergency = next(e["resource"] for e in bundle["entry"] if e["resource"]["agent"][0]["name"] == "Dr David Lambert")
    purpose = emergency["agent"][0]["purposeOfUse"][0]["coding"][0]
    assert purpose == {"system": ACT_REASON_SYSTEM, "code": "BTG", "display": "break the glass"}
    david = client_for(personas.david)
    refused = david.get("/fhir/AuditEvent", {"patient": patient_id(david, personas.alice)})
    assert refused.status_code == 403 and outcome_code(refused) == "not_treating_doctor"


def test_the_patient_reads_her_own_trail_and_documents__T3(personas):
    open_handle(client_for(personas.david), personas.alice)
    alice = client_for(personas.alice.user)
    pid = patient_id(alice, personas.alice)
    events = valid(alice.get("/fhir/AuditEvent", {"patient": pid}), "Bundle")
    opened = events["entry"][0]["resource"]
    assert Action.OPEN_RECORD in {s["code"] for s in opened["subtype"]}
    # IHE BALP: a RESTful event; the consultation is the equivalent of ITI-67, a query (action E).
    assert opened["type"]["code"] == "rest" and opened["action"] == "E"
    assert {"system": "urn:ihe:event-type-code", "code": "ITI-67", "display": "Find Document References"} in opened[
        "subtype"
    ]
    documents = valid(references(alice, pid), "Bundle")
    masked = next(e["resource"] for e in documents["entry"] if e["resource"]["description"] == "Synthèse psychiatrique")
    assert "MASQUE_PS" in label_codes(masked)  # the patient sees her own masks
    assert valid(patient_search(alice, personas.etienne), "Bundle")["total"] == 0  # not hers


def test_errors_are_operation_outcomes(personas):
    anonymous = APIClient()
    unauthenticated = anonymous.get("/fhir/Patient")
    assert unauthenticated.status_code == 401 and outcome_code(unauthenticated) == "not_authenticated"
    client = client_for(personas.david)
    assert outcome_code(client.get("/fhir/Observation")) == "not_found"
    assert outcome_code(client.get("/fhir/DocumentReference/abc")) == "not_found"
    assert outcome_code(client.get("/fhir/DocumentReference", {"patient": "1.f00.forged"})) == "no_match"
    assert client.get(reverse("fhir-documents")).status_code == 400


def test_a_patient_id_opened_in_emergency_keeps_its_mode_without_a_new_opening__A7(personas):
    client = client_for(personas.david)
    opened = open_handle(client, personas.bernard, mode="bris_de_glace", justification="Malaise en consultation.")
    before = TrailEntry.objects.filter(profile=personas.bernard, action=Action.OPEN_RECORD).count()
    bundle = valid(references(client, opened), "Bundle")
    assert descriptions(bundle) == {"Bilan lipidique"}
    assert TrailEntry.objects.filter(profile=personas.bernard, action=Action.OPEN_RECORD).count() == before


def _post_search(client, profile, birthdate=None):
    body = urlencode(
        {"identifier": f"{NIR_SYSTEM}|{profile.nir}", "birthdate": birthdate or profile.birth_date.isoformat()}
    )
    return client.post("/fhir/Patient/_search", body, content_type="application/x-www-form-urlencoded")


def test_post_search_keeps_the_nir_out_of_the_url_and_answers_like_get__A11(personas):
    client = client_for(personas.david)
    posted = valid(_post_search(client, personas.alice), "Bundle")
    got = valid(patient_search(client, personas.alice), "Bundle")
    assert posted["total"] == got["total"] == 1
    assert posted["entry"][0]["resource"]["name"] == got["entry"][0]["resource"]["name"]
    assert personas.alice.nir not in posted["link"][0]["url"] and "1985" not in posted["link"][0]["url"]
    assert valid(_post_search(client, personas.alice, "1985-03-13"), "Bundle")["total"] == 0  # A5: no oracle
    missing = client.post(
        "/fhir/Patient/_search", "birthdate=1985-03-12", content_type="application/x-www-form-urlencoded"
    )
    assert missing.status_code == 400 and outcome_code(missing) == "identifier_and_birthdate_required"
    create = client.post("/fhir/Patient", "identifier=x", content_type="application/x-www-form-urlencoded")
    assert create.status_code == 405


def test_the_capability_statement_offers_post_search():
    body = valid(APIClient().get("/fhir/metadata"), "CapabilityStatement")
    patient = next(r for r in body["rest"][0]["resource"] if r["type"] == "Patient")
    assert any("Patient/_search" in i.get("documentation", "") for i in patient["interaction"])


def test_the_capability_statement_says_exactly_what_is_supported():
    """SMART on FHIR declared (issue 17, tests/test_smart_apps.py); XML listed; every parameter the search honours."""
    body = valid(APIClient().get("/fhir/metadata"), "CapabilityStatement")
    rest = body["rest"][0]
    assert [s["coding"][0]["code"] for s in rest["security"]["service"]] == ["SMART-on-FHIR"]
    assert body["format"] == ["application/fhir+json", "application/fhir+xml"]
    documents = next(r for r in rest["resource"] if r["type"] == "DocumentReference")
    from fhir_server.search import DOCUMENT_PARAMETERS, UNANSWERABLE

    listed = {p["name"] for p in documents["searchParam"]}
    assert listed >= DOCUMENT_PARAMETERS - set(UNANSWERABLE) - {"subject"}
    assert not listed & set(UNANSWERABLE)
