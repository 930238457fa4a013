"""FHIR XML as well as JSON, both directions; 406 or 415 where neither fits, never the wrong format (issue 16)."""

import base64

import pytest
from fhir.resources.R4B import get_fhir_model_class
from lxml import etree

from fhir_server.resources import NIR_SYSTEM
from records.models import Document
from records.personas import minimal_pdf
from tests.api_fixtures import client_for
from tests.test_fhir_api import patient_id, references

pytestmark = pytest.mark.django_db
FHIR_XML = "application/fhir+xml"


def valid_xml(response, resource_type: str):
    """The body after checking its media type, parsed and validated as FHIR XML (R4B)."""
    assert response["Content-Type"].startswith(FHIR_XML), response["Content-Type"]
    root = etree.fromstring(response.content)
    assert etree.QName(root).namespace == "http://hl7.org/fhir"
    assert etree.QName(root).localname == resource_type, response.content[:200]
    return get_fhir_model_class(resource_type).model_validate_xml(response.content)


def test_xml_by_accept_and_by_format_parameter(personas):
    client = client_for(personas.david)
    pid = patient_id(client, personas.bernard)
    bundle = valid_xml(references(client, pid, _format="xml"), "Bundle")
    assert bundle.total == 1
    by_accept = client.get("/fhir/DocumentReference", {"patient": pid}, HTTP_ACCEPT=FHIR_XML)
    assert valid_xml(by_accept, "Bundle").entry[0].resource.description == "Bilan lipidique"
    assert valid_xml(client.get(f"/fhir/Patient/{pid}", HTTP_ACCEPT="application/xml"), "Patient").id == pid
    document_id = bundle.entry[0].resource.id
    binary = valid_xml(client.get(f"/fhir/Binary/{document_id}", {"_format": "xml"}), "Binary")
    assert binary.data.startswith(b"%PDF")  # the model decodes the base64 of the XML
    assert valid_xml(client.get("/fhir/metadata", HTTP_ACCEPT=FHIR_XML), "CapabilityStatement")
    # _format wins over Accept
    assert client.get("/fhir/metadata", {"_format": "json"}, HTTP_ACCEPT=FHIR_XML)["Content-Type"].startswith(
        "application/fhir+json"
    )


def test_errors_come_in_the_format_asked(personas):
    client = client_for(personas.david)
    missing = client.get("/fhir/DocumentReference", HTTP_ACCEPT=FHIR_XML)
    assert missing.status_code == 400 and valid_xml(missing, "OperationOutcome")
    unknown = client.get("/fhir/Observation", HTTP_ACCEPT=FHIR_XML)
    assert unknown.status_code == 404 and valid_xml(unknown, "OperationOutcome")


def test_neither_json_nor_xml_is_406_and_an_unknown_body_is_415(personas):
    client = client_for(personas.david)
    pid = patient_id(client, personas.bernard)
    for asked in ({"HTTP_ACCEPT": "text/html"}, {"HTTP_ACCEPT": "application/pdf"}):
        refused = client.get("/fhir/DocumentReference", {"patient": pid}, **asked)
        assert refused.status_code == 406, asked
        assert not refused["Content-Type"].startswith("text/html")
    assert client.get("/fhir/metadata", {"_format": "turtle"}).status_code == 406
    references(client, pid)  # the opening (the 406s above were refused before it)
    document_id = Document.objects.filter(profile=personas.bernard).first().pk
    assert client.get(f"/fhir/Binary/{document_id}", {"_format": "ttl"}).status_code == 406
    raw = client.get(f"/fhir/Binary/{document_id}", HTTP_ACCEPT="application/pdf")
    assert raw.status_code == 200 and raw["Content-Type"] == "application/pdf"
    yaml = client.post("/fhir/DocumentReference", "resourceType: DocumentReference", content_type="application/yaml")
    assert yaml.status_code == 415


def test_a_document_deposited_in_xml_is_answered_in_xml__A10(personas):
    client = client_for(personas.david)
    pid = patient_id(client, personas.alice)
    resource = get_fhir_model_class("DocumentReference").model_validate(
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11502-2"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "description": "Bilan en XML",
            "content": [
                {
                    "attachment": {
                        "contentType": "application/pdf",
                        "data": base64.b64encode(minimal_pdf("XML", ["Résultats."])).decode(),
                    }
                }
            ],
        }
    )
    created = client.post(
        "/fhir/DocumentReference", resource.model_dump_xml(), content_type=FHIR_XML, HTTP_ACCEPT=FHIR_XML
    )
    assert created.status_code == 201, created.content
    assert valid_xml(created, "DocumentReference").description == "Bilan en XML"
    assert Document.objects.filter(profile=personas.alice, title="Bilan en XML").exists()


def test_hostile_xml_is_a_400_not_an_expansion(personas):
    client = client_for(personas.david)
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<DocumentReference xmlns="http://hl7.org/fhir"><description value="&b;&x;"/></DocumentReference>'
    )
    response = client.post("/fhir/DocumentReference", bomb, content_type=FHIR_XML)
    assert response.status_code == 400
    assert b"root:" not in response.content and b"aaaaaaaaaaaaaaaaaaaa" not in response.content
    assert client.post("/fhir/DocumentReference", b"<not-xml", content_type=FHIR_XML).status_code == 400


def test_patient_search_answers_in_xml(personas):
    client = client_for(personas.david)
    found = client.get(
        "/fhir/Patient",
        {"identifier": f"{NIR_SYSTEM}|{personas.alice.nir}", "birthdate": "1985-03-12", "_format": FHIR_XML},
    )
    assert valid_xml(found, "Bundle").total == 1
