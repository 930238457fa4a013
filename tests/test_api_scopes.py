"""Token scopes mean the same on every door, and sensitive patient changes need a fresh step-up (issue 13,
items 6): a matrix over the REST and FHIR endpoints x read and write tokens (docs/api.md, "Token scopes")."""

import base64
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from access_control.models import Block, TrailEntry
from access_control.rules import Action
from fhir_server.resources import NIR_SYSTEM
from records.personas import minimal_pdf
from tests.api_fixtures import client_for, error_code, found_handle, open_handle, pdf_file, stepped_up_client
from tests.signin_fixtures import verified_client

pytestmark = pytest.mark.django_db


def _fhir_code(response) -> str:
    return response.json()["issue"][0]["details"]["coding"][0]["code"]


def _code(response) -> str:
    body = response.json()
    return _fhir_code(response) if body.get("resourceType") == "OperationOutcome" else error_code(response)


@pytest.fixture
def ctx(personas):
    """Handles and ids for Dr Lambert on Alice's record (made with a write token: handles are the
    practitioner's, whatever the token) and Alice's own ids."""
    writer = client_for(personas.david)
    opened = open_handle(writer, personas.alice)
    documents = writer.get(reverse("api-pro-documents", args=[opened])).json()["results"]
    fhir_pid = writer.get(
        "/fhir/Patient", {"identifier": f"{NIR_SYSTEM}|{personas.alice.nir}", "birthdate": "1985-03-12"}
    ).json()["entry"][0]["resource"]["id"]
    own = next(d for d in personas.alice.documents.all() if d.author_kind == d.AuthorKind.PRACTITIONER)
    return {
        "found": found_handle(writer, personas.alice),
        "opened": opened,
        "document": documents[0]["id"],
        "fhir_pid": fhir_pid,
        "alice": personas.alice,
        "alice_document": own.pk,
    }


def _search(client, profile):
    body = urlencode({"identifier": f"{NIR_SYSTEM}|{profile.nir}", "birthdate": profile.birth_date.isoformat()})
    return client.post("/fhir/Patient/_search", body, content_type="application/x-www-form-urlencoded")


def _deposit_body(pid):
    data = base64.b64encode(minimal_pdf("Scope", ["Texte."])).decode()
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "subject": {"reference": f"Patient/{pid}"},
        "description": "Scope",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "content": [{"attachment": {"contentType": "application/pdf", "data": data}}],
    }


# (name, scope the operation needs, call(client, ctx)) for Dr Lambert.
PRACTITIONER_CASES = [
    ("rest search", "read", lambda c, x: c.post(reverse("api-pro-search"), _traits_of(x), format="json")),
    ("rest open", "read", lambda c, x: c.post(reverse("api-pro-open", args=[x["found"]]), {"attests_care_team": True}, format="json")),
    ("rest documents", "read", lambda c, x: c.get(reverse("api-pro-documents", args=[x["opened"]]))),
    ("rest document", "read", lambda c, x: c.get(reverse("api-pro-document", args=[x["opened"], x["document"]]))),
    ("rest content", "read", lambda c, x: c.get(reverse("api-pro-content", args=[x["opened"], x["document"]]))),
    ("rest trail", "read", lambda c, x: c.get(reverse("api-pro-trail", args=[x["opened"]]))),
    ("rest my patients", "read", lambda c, x: c.get(reverse("api-pro-my-patients"))),
    ("rest activity", "read", lambda c, x: c.get(reverse("api-pro-activity"))),
    ("rest deposit", "write", lambda c, x: c.post(reverse("api-pro-documents", args=[x["found"]]), {"file": pdf_file(), "document_type": "11488-4", "title": "Scope"}, format="multipart")),
    ("rest deposit by identity", "write", lambda c, x: c.post(reverse("api-pro-deposit"), {**_traits_of(x), "birth_name": "MARTIN", "file": pdf_file(), "document_type": "11488-4", "title": "Scope"}, format="multipart")),
    ("rest release hold", "write", lambda c, x: c.post(reverse("api-pro-release", args=[x["opened"], x["document"]]))),
    ("fhir patient", "read", lambda c, x: c.get("/fhir/Patient", {"identifier": f"{NIR_SYSTEM}|{x['alice'].nir}", "birthdate": "1985-03-12"})),
    ("fhir patient _search", "read", lambda c, x: _search(c, x["alice"])),
    ("fhir documents", "read", lambda c, x: c.get("/fhir/DocumentReference", {"patient": x["fhir_pid"]})),
    ("fhir document", "read", lambda c, x: c.get(f"/fhir/DocumentReference/{x['document']}")),
    ("fhir binary", "read", lambda c, x: c.get(f"/fhir/Binary/{x['document']}")),
    ("fhir audit events", "read", lambda c, x: c.get("/fhir/AuditEvent", {"patient": x["fhir_pid"]})),
    ("fhir create", "write", lambda c, x: c.post("/fhir/DocumentReference", _deposit_body(x["fhir_pid"]), format="json")),
]  # fmt: skip


def _traits_of(x):
    return {"nir": x["alice"].nir, "birth_date": "1985-03-12"}


@pytest.mark.parametrize("scope", ["read", "write"])
@pytest.mark.parametrize(("name", "needs", "call"), PRACTITIONER_CASES, ids=[c[0] for c in PRACTITIONER_CASES])
def test_practitioner_scope_matrix_is_the_same_on_rest_and_fhir(personas, ctx, scope, name, needs, call):
    client = client_for(personas.david, scope=scope)
    before = TrailEntry.objects.count()
    response = call(client, ctx)
    assert response.status_code < 500, response.content
    if needs == "write" and scope == "read":
        assert response.status_code == 403 and _code(response) == "insufficient_scope", response.content
        assert TrailEntry.objects.count() == before  # refused before anything happened
    else:
        assert response.status_code != 403 or _code(response) != "insufficient_scope", response.content
        # the operation ran: its own answer (a domain refusal such as not_author or not_treating_doctor included)
        assert response.status_code in (200, 201, 202, 403, 404, 409), (name, response.status_code, response.content)


def test_a_read_token_consults_the_same_way_on_rest_and_fhir__A1_T1(personas):
    """Consulting is reading: both doors consult the record with a read token, traced once (T1).

    The REST opening is the consultation; FHIR listing the same record within its validity reuses it (issue 16).
    """
    reader = client_for(personas.david, scope="read")
    opened = open_handle(reader, personas.alice)
    assert reader.get(reverse("api-pro-documents", args=[opened])).status_code == 200
    pid = _search(reader, personas.alice).json()["entry"][0]["resource"]["id"]
    assert reader.get("/fhir/DocumentReference", {"patient": pid}).status_code == 200
    openings = TrailEntry.objects.filter(
        profile=personas.alice, action=Action.OPEN_RECORD, actor_practitioner=personas.david
    )
    assert openings.count() == 1


def _alice_url(name, p, *args):
    return reverse(name, args=[p.alice.pk, *args])


# (name, call(client, personas)) for Alice: writes that are not sensitive, then the sensitive ones.
PATIENT_WRITES = [
    ("upload", lambda c, p: c.post(_alice_url("api-patient-documents", p), {"file": pdf_file(), "document_type": "DOCPAT01", "title": "Moi"}, format="multipart")),
    ("mask", lambda c, p: c.post(_alice_url("api-patient-mask", p, p.alice.documents.filter(author_kind="practitioner").first().pk))),
    ("mask category", lambda c, p: c.post(_alice_url("api-patient-category", p, "sante-mentale"))),
    ("block", lambda c, p: c.post(_alice_url("api-patient-blocks", p), {"rpps": p.david.rpps}, format="json")),
    ("remove treating doctor", lambda c, p: c.delete(_alice_url("api-patient-treating-doctor", p))),
]  # fmt: skip
SENSITIVE = [
    ("lift a block", lambda c, p: c.delete(_alice_url("api-patient-block", p, p.hugo.rpps))),
    ("emergency opt-out", lambda c, p: c.put(_alice_url("api-patient-emergency", p), {"opt_out": True}, format="json")),
    ("grant treating rights", lambda c, p: c.post(_alice_url("api-patient-treating-rights", p), {"rpps": p.david.rpps}, format="json")),
    ("authorise occupational", lambda c, p: c.post(_alice_url("api-patient-occupational-authorisations", p), {"rpps": p.gilles.rpps}, format="json")),
    ("declare treating doctor", lambda c, p: c.put(_alice_url("api-patient-treating-doctor", p), {"rpps": p.david.rpps}, format="json")),
    ("notices by post", lambda c, p: c.put(_alice_url("api-patient-preferences", p), {"channel": "post", "new_document_notices": True}, format="json")),
]  # fmt: skip


@pytest.mark.parametrize("scope", ["read", "write"])
@pytest.mark.parametrize(("name", "call"), PATIENT_WRITES + SENSITIVE, ids=[c[0] for c in PATIENT_WRITES + SENSITIVE])
def test_patient_scope_matrix(personas, scope, name, call):
    client = client_for(personas.alice.user, scope=scope)
    assert client.get(_alice_url("api-patient-documents", personas)).status_code == 200  # reading: any scope
    before = TrailEntry.objects.count()
    response = call(client, personas)
    assert response.status_code < 500, response.content
    if scope == "read":
        assert response.status_code == 403 and error_code(response) == "insufficient_scope"
        assert TrailEntry.objects.count() == before
    elif (name, call) in SENSITIVE:
        assert response.status_code == 403 and error_code(response) == "step_up_required"
        assert TrailEntry.objects.count() == before
    else:
        assert response.status_code in (200, 201, 204), response.content


@pytest.mark.parametrize(("name", "call"), SENSITIVE, ids=[c[0] for c in SENSITIVE])
def test_sensitive_patient_changes_need_a_fresh_step_up_on_a_session__A5_A7(personas, name, call):
    stale = verified_client(client_for(personas.alice.user).__class__(), personas.alice.user)
    refused = call(stale, personas)
    assert refused.status_code == 403 and error_code(refused) == "step_up_required"
    done = call(stepped_up_client(personas.alice.user), personas)
    assert done.status_code in (200, 201, 204), done.content


def test_a_token_cannot_lift_a_block_but_a_stepped_up_session_can__A5(personas):
    token = client_for(personas.alice.user)
    refused = token.delete(_alice_url("api-patient-block", personas, personas.hugo.rpps))
    assert refused.status_code == 403 and error_code(refused) == "step_up_required"
    assert "portail" in refused.json()["error"]["message"]
    assert Block.objects.filter(profile=personas.alice, practitioner=personas.hugo).exists()
    english = token.delete(_alice_url("api-patient-block", personas, personas.hugo.rpps), HTTP_ACCEPT_LANGUAGE="en")
    assert "portal" in english.json()["error"]["message"]


def test_the_new_document_switch_alone_needs_no_step_up__N7(personas):
    response = client_for(personas.alice.user).put(
        _alice_url("api-patient-preferences", personas),
        {"channel": "email", "new_document_notices": False},
        format="json",
    )
    assert response.status_code == 200 and response.json()["new_document_notices"] is False
