"""IHE MHD / ANS PDSm with real clients against the live server: ITI-65, replacement, metadata update, FR Core.

fhirpy and SMART on FHIR's ``fhirclient`` drive the server; every resource Carnet emits is validated with
fhir.resources (R4B) and, where fhirclient has a model for it, parsed by fhirclient's own R4 models too.
"""

import base64
import hashlib
import io
import json
from pathlib import Path

import pytest
import requests
from django.core.files.storage import storages
from fhir.resources.R4B import get_fhir_model_class
from fhirclient import client as smart_client
from fhirclient.models.documentreference import DocumentReference as SmartDocumentReference
from fhirclient.models.patient import Patient as SmartPatient
from fhirclient.models.practitioner import Practitioner as SmartPractitioner
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome as ClientOperationOutcome

from access_control.actions import do_deposit_document
from access_control.models import TrailEntry
from access_control.rules import Action
from records.models import Document
from records.personas import minimal_pdf
from records.storage import STORAGE_ALIAS
from tests.api_fixtures import token_for
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("reference_data")]

TEST_NIR_SYSTEM = "urn:oid:1.2.250.1.213.1.4.10"
SECTOR = "urn:oid:1.2.250.1.71.4.2.4"
PATIENT_TYPE = "DOCPAT03"


def validated(body: dict) -> dict:
    get_fhir_model_class(body["resourceType"]).model_validate(body)
    return body


def fhirpy_client(live_server, user) -> SyncFHIRClient:
    return SyncFHIRClient(f"{live_server.url}/fhir", authorization=f"Bearer {token_for(user)}")


def smart(live_server, user) -> smart_client.FHIRClient:
    """fhirclient with a Carnet bearer token (no SMART launch: Carnet's tokens are created in the portals)."""
    fhir = smart_client.FHIRClient(settings={"app_id": "carnet-tests", "api_base": f"{live_server.url}/fhir/"})
    fhir.server.session.headers["Authorization"] = f"Bearer {token_for(user)}"
    return fhir


def find_patient(client: SyncFHIRClient, profile, birthdate: str) -> str:
    found = client.resources("Patient").search(identifier=f"{TEST_NIR_SYSTEM}|{profile.nir}", birthdate=birthdate)
    return found.fetch()[0].id


def pdf_bytes(text: str) -> bytes:
    return minimal_pdf(text, [text])


def provide_bundle(patient_id: str, documents: list[dict]) -> dict:
    """An ITI-65 Provide Document Bundle: a SubmissionSet List, DocumentReferences and their Binaries."""
    entries = []
    listed = []
    for number, document in enumerate(documents):
        data = document.pop("data")
        binary_url = f"urn:uuid:00000000-0000-4000-8000-{number:012d}"
        reference_url = f"urn:uuid:11111111-0000-4000-8000-{number:012d}"
        entries.append(
            {
                "fullUrl": binary_url,
                "resource": {"resourceType": "Binary", "contentType": "application/pdf", "data": b64(data)},
                "request": {"method": "POST", "url": "Binary"},
            }
        )
        reference = {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "securityLabel": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]}
            ],
            "content": [
                {
                    "attachment": {
                        "contentType": "application/pdf",
                        "url": binary_url,
                        "size": len(data),
                        "hash": base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode(),
                    }
                }
            ],
            "context": {
                "period": {"start": "2026-11-30"},
                "facilityType": {"coding": [{"system": SECTOR, "code": "SA07"}]},
                "practiceSetting": {"coding": [{"system": SECTOR, "code": "SA07"}]},
            },
            **document,
        }
        entries.append(
            {"fullUrl": reference_url, "resource": reference, "request": {"method": "POST", "url": "DocumentReference"}}
        )
        listed.append({"item": {"reference": reference_url}})
    entries.append(
        {
            "fullUrl": "urn:uuid:22222222-0000-4000-8000-000000000000",
            "resource": {
                "resourceType": "List",
                "status": "current",
                "mode": "working",
                "code": {
                    "coding": [
                        {"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}
                    ]
                },
                "subject": {"reference": f"Patient/{patient_id}"},
                "entry": listed,
            },
            "request": {"method": "POST", "url": "List"},
        }
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def post_bundle(live_server, user, bundle) -> requests.Response:
    return requests.post(
        f"{live_server.url}/fhir",
        data=json.dumps(bundle),
        headers={"Authorization": f"Bearer {token_for(user)}", "Content-Type": "application/fhir+json"},
        timeout=30,
    )


def deposit_one(live_server, user, patient_id: str, title: str, **extra) -> str:
    """Deposit one document by ITI-65 and return its DocumentReference id."""
    bundle = provide_bundle(patient_id, [{"data": pdf_bytes(title), "description": title, **extra}])
    answer = post_bundle(live_server, user, bundle)
    assert answer.status_code == 200, answer.content
    return answer.json()["entry"][1]["response"]["location"].split("/")[1]


def replaces(target: str) -> list[dict]:
    return [{"code": "replaces", "target": {"reference": target}}]


def test_iti65_bundle_deposits_all_documents_through_the_deposit_action__A10_T1(live_server, personas):
    """fhirclient posts an ITI-65 Bundle at [base]: two documents, their trail entries, MHD metadata back."""
    david = smart(live_server, personas.david.user)
    patient_id = find_patient(fhirpy_client(live_server, personas.david.user), personas.bernard, "1952-11-03")
    bundle = provide_bundle(
        patient_id,
        [
            {
                "data": pdf_bytes("Compte rendu A"),
                "description": "Compte rendu A",
                "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.250.1.999.1.1"},
            },
            {"data": pdf_bytes("Compte rendu B"), "description": "Compte rendu B"},
        ],
    )
    validated(bundle)
    deposits = TrailEntry.objects.filter(
        profile=personas.bernard, action=Action.DEPOSIT, actor_practitioner=personas.david
    )
    before = deposits.count()
    answer = validated(david.server.post_json("", bundle).json())
    assert answer["type"] == "transaction-response" and len(answer["entry"]) == len(bundle["entry"])
    statuses = [entry["response"]["status"] for entry in answer["entry"]]
    assert statuses == ["201 Created", "201 Created", "201 Created", "201 Created", "200 OK"]
    created = Document.objects.filter(profile=personas.bernard, title__startswith="Compte rendu ").order_by("title")
    assert [d.title for d in created] == ["Compte rendu A", "Compte rendu B"]
    first = created[0]
    assert answer["entry"][1]["response"]["location"] == f"DocumentReference/{first.pk}"
    assert deposits.count() == before + 2
    # Read back with fhirclient's models: masterIdentifier kept, SHA-1 hash, care setting, resolvable author.
    listed = SmartDocumentReference.where({"patient": patient_id}).perform_resources(david.server)  # ITI-67 opens
    assert str(first.pk) in {d.id for d in listed}
    by_setting = fhirpy_client(live_server, personas.david.user).resources("DocumentReference")
    found = {d.id for d in by_setting.search(patient=patient_id, setting=f"{SECTOR}|SA07", facility="SA07").fetch_all()}
    assert found == {str(d.pk) for d in created}
    reference = SmartDocumentReference.read(str(first.pk), david.server)
    body = validated(reference.as_json())
    assert body["masterIdentifier"]["value"] == "urn:oid:1.2.250.1.999.1.1"
    data = pdf_bytes("Compte rendu A")
    assert body["content"][0]["attachment"]["hash"] == b64(hashlib.sha1(data, usedforsecurity=False).digest())
    assert body["context"]["facilityType"]["coding"][0] == {"system": SECTOR, "code": "SA07"}
    assert body["custodian"]["display"] == "Carnet" and body["status"] == "current"
    author = SmartPractitioner.read(body["author"][0]["reference"].split("/")[1], david.server)
    author_body = validated(author.as_json())
    assert author_body["identifier"][0]["value"] == f"8{personas.david.rpps}"
    assert set(author_body) <= {"resourceType", "id", "identifier", "name", "qualification"}  # directory data only
    # the same unique id twice is refused (MHD: duplicate uniqueId), and nothing of that Bundle is kept
    again = post_bundle(
        live_server,
        personas.david.user,
        provide_bundle(
            patient_id,
            [{"data": data, "description": "Doublon", "masterIdentifier": {"value": "urn:oid:1.2.250.1.999.1.1"}}],
        ),
    )
    assert again.status_code == 400 and validated(again.json())["resourceType"] == "OperationOutcome"
    assert not Document.objects.filter(title="Doublon").exists()


def test_a_bundle_is_all_or_nothing__A10(live_server, personas):
    """One refused document (a type not allowed, here a hold on a patient's own deposit) keeps none of them."""
    client = fhirpy_client(live_server, personas.david.user)
    patient_id = find_patient(client, personas.bernard, "1952-11-03")
    before = Document.objects.filter(profile=personas.bernard).count()
    bundle = provide_bundle(
        patient_id,
        [
            {"data": pdf_bytes("Bon"), "description": "Bon"},
            {"data": b"MZ\x90\x00 not a document", "description": "Executable"},
        ],
    )
    stored_before = stored_bodies()
    response = post_bundle(live_server, personas.david.user, bundle)
    assert response.status_code == 400
    assert validated(response.json())["issue"][0]["details"]["coding"][0]["code"] == "file_type"
    assert Document.objects.filter(profile=personas.bernard).count() == before
    assert stored_bodies() == stored_before  # the first body, stored before the second was refused, is gone


def stored_bodies() -> set[str]:
    """Every file in the local document store (the test settings use the local back end)."""
    root = Path(storages[STORAGE_ALIAS].location)
    return {str(path) for path in root.rglob("*") if path.is_file()}


def test_a_bundle_in_xml_and_a_patient_apps_bundle__A10(live_server, personas):
    """ITI-65 in FHIR XML gets its answer in XML; a patient's Bundle goes through the patient's deposit rules."""
    client = fhirpy_client(live_server, personas.david.user)
    patient_id = find_patient(client, personas.bernard, "1952-11-03")
    bundle = provide_bundle(patient_id, [{"data": pdf_bytes("XML"), "description": "Par XML"}])
    xml = get_fhir_model_class("Bundle").model_validate(bundle).model_dump_xml()
    answer = requests.post(
        f"{live_server.url}/fhir",
        data=xml.encode() if isinstance(xml, str) else xml,
        headers={
            "Authorization": f"Bearer {token_for(personas.david.user)}",
            "Content-Type": "application/fhir+xml",
            "Accept": "application/fhir+xml",
        },
        timeout=30,
    )
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/fhir+xml")
    assert b"transaction-response" in answer.content and Document.objects.filter(title="Par XML").exists()
    # Alice's app: a practitioner's type is refused to a patient (A10), her own type is taken
    alice = fhirpy_client(live_server, personas.alice.user)
    own = find_patient(alice, personas.alice, "1985-03-12")
    refused = post_bundle(
        live_server, personas.alice.user, provide_bundle(own, [{"data": pdf_bytes("A"), "description": "Pas pour moi"}])
    )
    assert (
        refused.status_code == 400
        and refused.json()["issue"][0]["details"]["coding"][0]["code"] == "type_not_for_patients"
    )
    mine = provide_bundle(own, [{"data": pdf_bytes("M"), "description": "Mon document"}])
    mine["entry"][1]["resource"]["type"] = {"coding": [{"code": PATIENT_TYPE}]}
    del (
        mine["entry"][1]["resource"]["context"]["facilityType"],
        mine["entry"][1]["resource"]["context"]["practiceSetting"],
    )
    assert post_bundle(live_server, personas.alice.user, mine).status_code == 200
    document = Document.objects.get(title="Mon document")
    assert document.author_kind == "patient"
    read = alice.reference("DocumentReference", str(document.pk)).to_resource().serialize()
    assert validated(read)["context"]["facilityType"]["coding"][0] == {
        "system": "urn:oid:1.2.250.1.213.1.1.4.6",
        "code": "EXPPAT_1",
    }


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: b["entry"].pop(), "invalid_bundle"),  # no SubmissionSet
        (lambda b: b["entry"][0]["resource"].update(data="%%%not base64"), "invalid_bundle"),
        (lambda b: b["entry"][1]["resource"]["content"][0]["attachment"].update(hash=b64(b"x" * 20)), "invalid_bundle"),
        (lambda b: b["entry"][1]["resource"].update(subject={"reference": "Patient/other"}), "invalid_bundle"),
        (lambda b: b.update(type="batch"), "invalid_bundle"),
        (
            lambda b: b["entry"][1]["resource"].update(
                securityLabel=[
                    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]}
                ]
            ),
            "invalid_bundle",
        ),
        (lambda b: b["entry"].extend([b["entry"][0]] * 200), "invalid_bundle"),
        (
            lambda b: b["entry"][1]["resource"].update(
                relatesTo=[{"code": "transforms", "target": {"reference": "DocumentReference/1"}}]
            ),
            "invalid_bundle",
        ),
        (lambda b: b["entry"][1].update(resource=["not", "an", "object"]), "invalid_bundle"),
    ],
)
def test_bad_bundles_are_operation_outcomes_never_500s(live_server, personas, mutate, code):
    client = fhirpy_client(live_server, personas.david.user)
    patient_id = find_patient(client, personas.bernard, "1952-11-03")
    bundle = provide_bundle(patient_id, [{"data": pdf_bytes("X"), "description": "Mauvais"}])
    mutate(bundle)
    response = post_bundle(live_server, personas.david.user, bundle)
    assert response.status_code == 400, response.content
    body = validated(response.json())
    assert body["issue"][0]["details"]["coding"][0]["code"] == code
    assert not Document.objects.filter(title="Mauvais").exists()


def test_hostile_bundles_deep_for_an_unknown_patient_or_a_read_token(live_server, personas):
    client = fhirpy_client(live_server, personas.david.user)
    deep: dict = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    node = deep
    for _level in range(200):
        node["x"] = {}
        node = node["x"]
    assert post_bundle(live_server, personas.david.user, deep).status_code == 400
    unknown = post_bundle(
        live_server, personas.david.user, provide_bundle("nobody", [{"data": pdf_bytes("X"), "description": "Perdu"}])
    )
    assert unknown.status_code == 404 and validated(unknown.json())["resourceType"] == "OperationOutcome"
    read_only = requests.post(
        f"{live_server.url}/fhir",
        data=json.dumps(
            provide_bundle(
                find_patient(client, personas.bernard, "1952-11-03"),
                [{"data": pdf_bytes("X"), "description": "Lecture"}],
            )
        ),
        headers={
            "Authorization": f"Bearer {token_for(personas.david.user, scope='read')}",
            "Content-Type": "application/fhir+json",
        },
        timeout=30,
    )
    assert read_only.status_code == 403
    assert not Document.objects.filter(title__in=["Perdu", "Lecture"]).exists()


def test_replacement_supersedes_the_old_document_and_status_search_honours_it__A10(live_server, personas):
    """relatesTo replaces: the old document becomes superseded; the door still shows both; status filters."""
    client = fhirpy_client(live_server, personas.david.user)
    patient_id = find_patient(client, personas.bernard, "1952-11-03")
    old_id = deposit_one(live_server, personas.david.user, patient_id, "Version 1")
    replacing = provide_bundle(
        patient_id,
        [{"data": pdf_bytes("V2"), "description": "Version 2", "relatesTo": replaces(f"DocumentReference/{old_id}")}],
    )
    answer = post_bundle(live_server, personas.david.user, replacing)
    assert answer.status_code == 200, answer.content
    new_id = answer.json()["entry"][1]["response"]["location"].split("/")[1]
    old = Document.objects.get(pk=old_id)
    assert old.status == "superseded"
    assert (
        TrailEntry.objects.filter(
            profile=personas.bernard, action=Action.SUPERSEDE_DOCUMENT, document_id=old.pk
        ).count()
        == 1
    )
    superseded = client.resources("DocumentReference").search(patient=patient_id, status="superseded").fetch_all()
    assert [d.id for d in superseded] == [old_id]
    assert validated(superseded[0].serialize())["status"] == "superseded"
    current = {
        d.id for d in client.resources("DocumentReference").search(patient=patient_id, status="current").fetch_all()
    }
    assert new_id in current and old_id not in current
    replacement = client.reference("DocumentReference", new_id).to_resource()
    assert validated(replacement.serialize())["relatesTo"] == [
        {"code": "replaces", "target": {"reference": f"DocumentReference/{old_id}"}}
    ]
    assert [
        d.id
        for d in client.resources("DocumentReference")
        .search(patient=patient_id, relatesto=f"DocumentReference/{old_id}")
        .fetch_all()
    ] == [new_id]
    # replacing it again, or replacing someone else's document, is refused and keeps nothing
    twice = post_bundle(live_server, personas.david.user, replacing)
    assert (
        twice.status_code == 400
        and twice.json()["issue"][0]["details"]["coding"][0]["code"] == "document_not_replaceable"
    )
    others = do_deposit_document(
        personas.bernard,
        actor=personas.claire,
        fileobj=io.BytesIO(pdf_bytes("C")),
        document_type="11488-4",
        title="De Claire",
    )
    foreign = provide_bundle(
        patient_id,
        [
            {
                "data": pdf_bytes("V3"),
                "description": "Pas le mien",
                "relatesTo": [{"code": "replaces", "target": {"reference": f"DocumentReference/{others.pk}"}}],
            }
        ],
    )
    refused = post_bundle(live_server, personas.david.user, foreign)
    assert refused.status_code == 400 and not Document.objects.filter(title="Pas le mien").exists()
    assert Document.objects.get(pk=others.pk).status == "current"


def test_pdsm_replace_bundle_with_a_patch_entry_and_a_standalone_patch(live_server, personas):
    """The PDSm replace example's shape (PATCH status superseded in the Bundle), and PATCH on its own (fhirpy)."""
    client = fhirpy_client(live_server, personas.david.user)
    patient_id = find_patient(client, personas.bernard, "1952-11-03")
    old_id = deposit_one(live_server, personas.david.user, patient_id, "Patch 1")
    patch_url = "urn:uuid:33333333-0000-4000-8000-000000000000"
    bundle = provide_bundle(
        patient_id, [{"data": pdf_bytes("P2"), "description": "Patch 2", "relatesTo": replaces(patch_url)}]
    )
    patch = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "DocumentReference.status"},
                    {"name": "value", "valueCode": "superseded"},
                ],
            }
        ],
    }
    bundle["entry"].append(
        {
            "fullUrl": patch_url,
            "resource": patch,
            "request": {"method": "PATCH", "url": f"DocumentReference/{old_id}"},
        }
    )
    validated(bundle)
    answer = post_bundle(live_server, personas.david.user, bundle)
    assert answer.status_code == 200, answer.content
    assert answer.json()["entry"][-1]["response"] == {"status": "200 OK", "location": f"DocumentReference/{old_id}"}
    assert Document.objects.get(pk=old_id).status == "superseded"
    # standalone metadata update (PDSm declares patch): the author withdraws the new one
    new_id = answer.json()["entry"][1]["response"]["location"].split("/")[1]
    outcome = client.patch("DocumentReference", new_id, status="superseded")
    assert validated(dict(outcome))["resourceType"] == "OperationOutcome"
    assert Document.objects.get(pk=new_id).status == "superseded"
    with pytest.raises(ClientOperationOutcome):  # twice: refused
        client.patch("DocumentReference", new_id, status="superseded")
    with pytest.raises(ClientOperationOutcome):  # any other change: refused, not ignored
        client.patch("DocumentReference", new_id, description="autre")
    claire = fhirpy_client(live_server, personas.claire.user)
    with pytest.raises(ClientOperationOutcome):  # not the author: refused alike
        claire.patch("DocumentReference", old_id, status="superseded")


def test_fr_core_patient_through_fhirclient__I3(live_server, personas):
    """FR Core: typed INS identifier under the test OID, identity status, birth place, first first name."""
    pid = find_patient(fhirpy_client(live_server, personas.david.user), personas.bernard, "1952-11-03")
    fhir = smart(live_server, personas.david.user)
    patient = SmartPatient.read(pid, fhir.server)
    body = validated(patient.as_json())
    identifier = body["identifier"][0]
    assert identifier["system"] == TEST_NIR_SYSTEM and identifier["type"]["coding"][0]["code"] == "INS-NIR-TEST"
    reliability = next(e for e in body["extension"] if e["url"].endswith("fr-core-identity-reliability"))
    assert reliability["extension"][0]["valueCoding"]["code"] == personas.bernard.identity_status == "RECUP"
    official = body["name"][0]
    first_names = personas.bernard.first_names.split()
    assert official["given"] == first_names[:1]
    assert official["extension"][0]["valueString"] == " ".join(first_names)
    if personas.bernard.birth_place_code:
        place = next(e for e in body["extension"] if e["url"].endswith("patient-birthPlace"))
        assert place["valueAddress"]["extension"][0]["valueCoding"]["code"] == personas.bernard.birth_place_code
    statement = fhir.server.request_json("metadata")
    assert validated(statement)["instantiates"]


def test_audit_events_carry_balp_codes_for_each_transaction__T3(live_server, personas):
    """The patient's trail through fhirpy: ITI-67, ITI-68 and ITI-65 events typed rest (IHE BALP)."""
    david = fhirpy_client(live_server, personas.david.user)
    patient_id = find_patient(david, personas.bernard, "1952-11-03")
    documents = david.resources("DocumentReference").search(patient=patient_id).fetch_all()
    david.reference("Binary", documents[0].id).to_resource()
    post_bundle(
        live_server, personas.david.user, provide_bundle(patient_id, [{"data": pdf_bytes("T"), "description": "Trace"}])
    )
    entries = TrailEntry.objects.filter(profile=personas.bernard)
    assert entries.filter(action=Action.OPEN_DOCUMENT).exists()
    # Bernard is never activated: his treating doctor reads the trail (A6) if he has one; otherwise Alice's own.
    claire = fhirpy_client(live_server, personas.claire.user)
    claire.resources("DocumentReference").search(patient=find_patient(claire, personas.alice, "1985-03-12")).fetch()
    alice = fhirpy_client(live_server, personas.alice.user)
    own = find_patient(alice, personas.alice, "1985-03-12")
    events = [validated(e.serialize()) for e in alice.resources("AuditEvent").search(patient=own).limit(100).fetch()]
    by_iti = {s["code"]: e for e in events for s in e["subtype"] if s["system"] == "urn:ihe:event-type-code"}
    assert "ITI-67" in by_iti and by_iti["ITI-67"]["type"]["code"] == "rest"


def test_a_simple_create_keeps_the_mhd_metadata_and_may_replace__A10(live_server, personas):
    """``POST DocumentReference`` (fhirpy ``save``) reads the same metadata as ITI-65: unique id, replacement."""
    client = fhirpy_client(live_server, personas.david.user)
    patient_id = find_patient(client, personas.bernard, "1952-11-03")
    old_id = deposit_one(live_server, personas.david.user, patient_id, "Avant")
    data = pdf_bytes("Apres")
    new = client.resource(
        "DocumentReference",
        status="current",
        masterIdentifier={"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.250.1.999.2.1"},
        type={"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        subject={"reference": f"Patient/{patient_id}"},
        description="Après",
        relatesTo=replaces(f"DocumentReference/{old_id}"),
        content=[{"attachment": {"contentType": "application/pdf", "data": b64(data)}}],
    )
    new.save()
    body = validated(new.serialize())
    assert body["masterIdentifier"]["value"] == "urn:oid:1.2.250.1.999.2.1"
    assert body["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{old_id}"
    assert Document.objects.get(pk=old_id).status == "superseded"
    found = client.resources("DocumentReference").search(patient=patient_id, identifier="urn:oid:1.2.250.1.999.2.1")
    assert [d.id for d in found.fetch()] == [body["id"]]
