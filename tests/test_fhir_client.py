"""A real FHIR client library (fhirpy) against the live server: the journey of a practice software.

Dr David Lambert's software finds Bernard Petit by NIR and birth date (A11), lists his documents (the opening
is traced and Bernard gets a letter, T1 N1, N2), reads one with its content, and deposits a new one (A10).
Alice's app reads her trail. Every resource the client receives is validated with fhir.resources (R4B).
"""

import base64

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome as ClientOperationOutcome

from access_control.models import TrailEntry
from access_control.rules import Action
from fhir_server.resources import NIR_SYSTEM
from notifications.models import Notice
from records.models import Document
from records.personas import minimal_pdf
from tests.api_fixtures import token_for
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("reference_data")]


def fhir_client(live_server, user) -> SyncFHIRClient:
    return SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {token_for(user)}")


def validated(resource) -> dict:
    body = resource.serialize()
    get_fhir_model_class(body["resourceType"]).model_validate(body)
    return body


def test_practice_software_finds_reads_and_deposits__A11_T1_N1_A10(live_server, personas):
    client = fhir_client(live_server, personas.david.user)
    patients = (
        client.resources("Patient")
        .search(identifier=f"{NIR_SYSTEM}|{personas.bernard.nir}", birthdate="1952-11-03")
        .fetch()
    )
    assert len(patients) == 1
    patient = validated(patients[0])
    assert patient["name"][0]["family"] == "PETIT"

    documents = client.resources("DocumentReference").search(patient=patients[0].id).fetch_all()
    assert [validated(d)["description"] for d in documents] == ["Bilan lipidique"]
    assert (
        TrailEntry.objects.filter(
            profile=personas.bernard, action=Action.OPEN_RECORD, actor_practitioner=personas.david, outcome="allowed"
        ).count()
        == 1
    )
    notice = Notice.objects.get(profile=personas.bernard, kind="consultation", practitioner=personas.david)
    assert notice.channel == Notice.Channel.LETTER  # N2: never activated, so a postal letter

    read = client.reference("DocumentReference", documents[0].id).to_resource()
    assert validated(read)["id"] == documents[0].id
    binary = client.reference("Binary", documents[0].id).to_resource()
    assert base64.b64decode(validated(binary)["data"]).startswith(b"%PDF")

    new = client.resource(
        "DocumentReference",
        status="current",
        type={"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        subject={"reference": f"Patient/{patients[0].id}"},
        description="Consultation de suivi",
        content=[
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "data": base64.b64encode(minimal_pdf("Suivi", ["Tension 12/8."])).decode(),
                }
            }
        ],
    )
    new.save()
    assert (
        validated(new)["id"]
        and Document.objects.filter(profile=personas.bernard, title="Consultation de suivi").exists()
    )


def test_a_refusal_reaches_the_client_as_an_operation_outcome__A5(live_server, personas):
    client = fhir_client(live_server, personas.hugo.user)
    found = (
        client.resources("Patient")
        .search(identifier=f"{NIR_SYSTEM}|{personas.alice.nir}", birthdate="1985-03-12")
        .fetch()
    )
    assert found == []  # blocked: exactly like an unknown patient
    with pytest.raises(ClientOperationOutcome) as raised:
        client.resources("Patient").search(birthdate="1985-03-12").fetch()
    issue = raised.value.resource["issue"][0]
    assert issue["code"] == "invalid"
    get_fhir_model_class("OperationOutcome").model_validate(raised.value.resource)


def test_a_patient_app_reads_her_trail__T3(live_server, personas):
    client = fhir_client(live_server, personas.alice.user)
    patients = (
        client.resources("Patient")
        .search(identifier=f"{NIR_SYSTEM}|{personas.alice.nir}", birthdate="1985-03-12")
        .fetch()
    )
    events = client.resources("AuditEvent").search(patient=patients[0].id).limit(20).fetch()
    assert events and all(validated(event)["resourceType"] == "AuditEvent" for event in events)
    assert {event["subtype"][0]["code"] for event in events} >= {"mask_document", "block_practitioner"}


def test_subject_resolves_and_paging_is_one_consultation__T1(live_server, personas):
    """fhirpy: ``subject.to_resource()`` reads the Patient; paging through every page writes one trail entry."""
    client = fhir_client(live_server, personas.claire.user)
    patient = (
        client.resources("Patient")
        .search(identifier=f"{NIR_SYSTEM}|{personas.alice.nir}", birthdate="1985-03-12")
        .fetch()[0]
    )
    documents = client.resources("DocumentReference").search(patient=patient.id).limit(2).fetch_all()
    assert len(documents) == 8
    assert all(validated(d)["subject"]["reference"] == f"Patient/{patient.id}" for d in documents)
    subject = documents[0]["subject"].to_resource()
    assert validated(subject)["id"] == patient.id and subject["birthDate"] == "1985-03-12"
    again = client.resources("Patient").search(identifier=f"{NIR_SYSTEM}|{personas.alice.nir}", birthdate="1985-03-12")
    assert again.fetch()[0].id == patient.id  # stable between two searches
    assert client.resources("DocumentReference").search(patient=patient.id, type="11488-4,11502-2").count() >= 2
    opened = TrailEntry.objects.filter(
        profile=personas.alice, action=Action.OPEN_RECORD, actor_practitioner=personas.claire, outcome="allowed"
    )
    assert opened.count() == 1
