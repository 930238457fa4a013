"""IHE MHD ITI-67 search that never lies, one trail entry per consultation, stable Patient ids (issue 16).

Each filter is checked against an oracle: the full listing filtered here, field by field, from what the server
itself emitted. Every resource received is validated with fhir.resources (``valid``).
"""

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import time_machine
from django.utils import timezone

from access_control import handles
from access_control.actions import do_block_practitioner
from access_control.api import OPENING_VALIDITY
from access_control.models import TrailEntry
from access_control.rules import Action
from fhir_server.resources import CLASS_SYSTEM, NIR_SYSTEM, TRE_A07_SYSTEM
from records.models import Document
from tests.api_fixtures import client_for
from tests.test_fhir_api import label_codes, outcome_code, patient_id, references, valid

pytestmark = pytest.mark.django_db


def everything(client, pid) -> list[dict]:
    bundle = valid(references(client, pid, _count=100), "Bundle")
    return [entry["resource"] for entry in bundle["entry"]]


def ids(bundle) -> set[str]:
    return {entry["resource"]["id"] for entry in bundle["entry"]}


def self_link(bundle) -> dict[str, list[str]]:
    url = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    return parse_qs(urlparse(url).query)


@pytest.fixture
def claire_on_alice(personas):
    client = client_for(personas.claire)
    pid = patient_id(client, personas.alice)
    return client, pid, everything(client, pid)


def test_type_and_category_take_or_lists_and_systems(claire_on_alice):
    client, pid, full = claire_on_alice
    codes = sorted({r["type"]["coding"][0]["code"] for r in full})[:2]
    expected = {r["id"] for r in full if r["type"]["coding"][0]["code"] in codes}
    either = valid(references(client, pid, type=",".join(codes)), "Bundle")
    assert ids(either) == expected and len(expected) >= 2
    classes = {r["category"][0]["coding"][0]["code"] for r in full}
    one = sorted(classes)[0]
    by_class = valid(references(client, pid, category=f"{CLASS_SYSTEM}|{one}"), "Bundle")
    assert ids(by_class) == {r["id"] for r in full if r["category"][0]["coding"][0]["code"] == one}
    assert all(r["category"][0]["coding"][0]["system"] == "urn:oid:1.2.250.1.213.1.1.4.1" for r in full)
    assert valid(references(client, pid, category=f"urn:other|{one}"), "Bundle")["total"] == 0


def test_status_is_honoured_and_checked(claire_on_alice):
    client, pid, full = claire_on_alice
    assert valid(references(client, pid, status="current"), "Bundle")["total"] == len(full)
    assert valid(references(client, pid, status="superseded,entered-in-error"), "Bundle")["total"] == 0
    bad = references(client, pid, status="archived")
    assert bad.status_code == 400 and outcome_code(bad) == "invalid"


def test_dates_at_any_precision_and_every_prefix(claire_on_alice):
    client, pid, full = claire_on_alice
    deposited = timezone.localtime(Document.objects.get(pk=full[0]["id"]).deposited_at)
    month = deposited.strftime("%Y-%m")
    for name in ("date", "creation"):
        assert valid(references(client, pid, **{name: month}), "Bundle")["total"] == len(full)
        assert valid(references(client, pid, **{name: deposited.strftime("%Y")}), "Bundle")["total"] == len(full)
        assert valid(references(client, pid, **{name: f"gt{month}"}), "Bundle")["total"] == 0
        assert valid(references(client, pid, **{name: f"ne{month}"}), "Bundle")["total"] == 0
    later = (deposited + timedelta(days=40)).strftime("%Y-%m")
    assert valid(references(client, pid, date=f"eb{later}"), "Bundle")["total"] == len(full)
    # The personas' deposits may straddle a second (or a minute) on a loaded machine: bound by the newest for
    # "le" and by the oldest for "ge", so that every document is inside whatever the seeding took.
    instants = [timezone.localtime(d.deposited_at) for d in Document.objects.filter(pk__in=[r["id"] for r in full])]
    newest, oldest = max(instants), min(instants)
    minute = newest.strftime("%Y-%m-%dT%H:%M")
    zoned = oldest.strftime("%Y-%m-%dT%H:%M:%S") + oldest.strftime("%z")[:3] + ":" + oldest.strftime("%z")[3:]
    assert valid(references(client, pid, date=f"le{minute}"), "Bundle")["total"] == len(full)
    assert valid(references(client, pid, date=f"ge{zoned}"), "Bundle")["total"] == len(full)
    for wrong in ("2026-13", "26-12", "ap2026-12", "2026-12-01T25:00"):
        response = references(client, pid, date=wrong)
        assert response.status_code == 400 and outcome_code(response) == "invalid", wrong


def test_period_is_the_care_date(claire_on_alice):
    client, pid, full = claire_on_alice
    years = sorted({r["context"]["period"]["start"][:4] for r in full})
    year = years[0]
    expected = {r["id"] for r in full if r["context"]["period"]["start"][:4] == year}
    assert ids(valid(references(client, pid, period=year), "Bundle")) == expected
    after = {r["id"] for r in full if r["context"]["period"]["start"][:4] > year}
    assert ids(valid(references(client, pid, period=f"gt{year}"), "Bundle")) == after


def test_author_names_security_labels_identifier_and_format(personas, claire_on_alice):
    client, pid, full = claire_on_alice
    authored = Document.objects.filter(pk__in=[r["id"] for r in full], author_practitioner__isnull=False)
    author = authored.first().author_practitioner
    expected = {str(d.pk) for d in authored if d.author_practitioner_id == author.pk}
    by_family = valid(references(client, pid, **{"author.family": author.last_name.lower()[:3]}), "Bundle")
    assert (
        {str(d.pk) for d in authored.filter(author_practitioner__last_name__istartswith=author.last_name[:3])}
        == (ids(by_family))
        >= expected
    )
    exact = valid(references(client, pid, **{"author.given:exact": author.first_name}), "Bundle")
    assert ids(exact) >= expected
    assert valid(references(client, pid, **{"author.given": "Zzz"}), "Bundle")["total"] == 0
    assert valid(references(client, pid, **{"security-label": "N"}), "Bundle")["total"] == len(full)
    held = {r["id"] for r in full if "INVISIBLE_PATIENT" in label_codes(r)}
    by_label = valid(references(client, pid, **{"security-label": f"{TRE_A07_SYSTEM}|INVISIBLE_PATIENT"}), "Bundle")
    assert ids(by_label) == held
    # A4: a practitioner never learns of masks, not even by searching for the label.
    assert valid(references(client, pid, **{"security-label": "MASQUE_PS"}), "Bundle")["total"] == 0
    one = full[0]
    for value in (one["masterIdentifier"]["value"], f"urn:ietf:rfc:3986|{one['identifier'][0]['value']}"):
        assert ids(valid(references(client, pid, identifier=value), "Bundle")) == {one["id"]}
    assert (
        valid(references(client, pid, identifier="urn:uuid:00000000-0000-0000-0000-000000000000"), "Bundle")["total"]
        == 0
    )
    pdf = {r["id"] for r in full if r["content"][0]["format"]["code"] == "urn:ihe:iti:xds-sd:pdf:2008"}
    assert ids(valid(references(client, pid, format="urn:ihe:iti:xds-sd:pdf:2008"), "Bundle")) == pdf
    assert pdf == {r["id"] for r in full if r["content"][0]["attachment"]["contentType"] == "application/pdf"}


@pytest.mark.parametrize("name", ["event", "related"])
def test_what_carnet_does_not_record_is_refused_not_ignored(personas, name):
    client = client_for(personas.claire)
    pid = patient_id(client, personas.alice)
    before = TrailEntry.objects.filter(profile=personas.alice, action=Action.OPEN_RECORD).count()
    response = references(client, pid, **{name: "x"})
    assert response.status_code == 400 and outcome_code(response) == "unsupported_parameter"
    # refused before the opening: no trail entry, no notice
    assert TrailEntry.objects.filter(profile=personas.alice, action=Action.OPEN_RECORD).count() == before


def test_unknown_parameters_strict_is_400_lenient_is_left_out_of_the_self_link(personas):
    client = client_for(personas.claire)
    pid = patient_id(client, personas.alice)
    strict = client.get(
        "/fhir/DocumentReference",
        {"patient": pid, "_sort": "date"},
        HTTP_PREFER="return=representation, handling=strict",
    )
    assert strict.status_code == 400 and outcome_code(strict) == "unknown_parameter"
    lenient = valid(references(client, pid, _sort="date", type="11488-4"), "Bundle")
    query = self_link(lenient)
    assert "_sort" not in query and query["type"] == ["11488-4"] and query["patient"] == [pid]
    modifier = references(client, pid, **{"type:not": "11488-4"})
    assert modifier.status_code == 400 and outcome_code(modifier) == "unsupported_modifier"
    strict_patient = client.get(
        "/fhir/Patient",
        {"identifier": f"{NIR_SYSTEM}|{personas.alice.nir}", "birthdate": "1985-03-12", "name": "MARTIN"},
        HTTP_PREFER="handling=strict",
    )
    assert strict_patient.status_code == 400


def test_summary_count_and_post_search(personas, claire_on_alice):
    client, pid, full = claire_on_alice
    counted = valid(references(client, pid, _summary="count"), "Bundle")
    assert counted["total"] == len(full) and not counted.get("entry")
    posted = client.post(
        "/fhir/DocumentReference/_search",
        urlencode({"patient": pid, "category": "42"}),
        content_type="application/x-www-form-urlencoded",
    )
    got = valid(references(client, pid, category="42"), "Bundle")
    assert ids(valid(posted, "Bundle")) == ids(got) and got["total"] >= 1
    # patient.identifier with the NIR in the body: honoured, and the links name the patient by id, never by NIR.
    by_nir = client.post(
        "/fhir/DocumentReference/_search",
        urlencode({"patient": pid, "patient.identifier": f"{NIR_SYSTEM}|{personas.alice.nir}", "_count": 2}),
        content_type="application/x-www-form-urlencoded",
    )
    bundle = valid(by_nir, "Bundle")
    assert bundle["total"] == len(full)
    assert all(personas.alice.nir not in link["url"] for link in bundle["link"])
    other = client.get("/fhir/DocumentReference", {"patient": pid, "patient.identifier": f"{NIR_SYSTEM}|1"})
    assert valid(other, "OperationOutcome") and other.status_code == 404
    alone = client.get("/fhir/DocumentReference", {"patient.identifier": f"{NIR_SYSTEM}|{personas.alice.nir}"})
    assert alone.status_code == 400 and outcome_code(alone) == "identifier_and_birthdate_required"  # A11
    reader = client_for(personas.claire, scope="read")
    assert (
        reader.post(
            "/fhir/DocumentReference/_search",
            urlencode({"patient": patient_id(reader, personas.alice)}),
            content_type="application/x-www-form-urlencoded",
        ).status_code
        == 200
    )  # a search, not a write


def test_a_patient_searches_her_documents_by_her_nir(personas):
    alice = client_for(personas.alice.user)
    response = alice.get("/fhir/DocumentReference", {"patient.identifier": f"{NIR_SYSTEM}|{personas.alice.nir}"})
    assert valid(response, "Bundle")["total"] >= 1
    assert (
        alice.get("/fhir/DocumentReference", {"patient.identifier": f"{NIR_SYSTEM}|{personas.etienne.nir}"}).status_code
        == 404
    )


# --- one consultation, one trail entry (item 7) ----------------------------------------------------------------


def openings(profile, practitioner, outcome="allowed") -> int:
    return TrailEntry.objects.filter(
        profile=profile, action=Action.OPEN_RECORD, actor_practitioner=practitioner, outcome=outcome
    ).count()


def test_paging_and_listing_again_is_one_consultation__T1_N1(personas):
    client = client_for(personas.claire)
    pid = patient_id(client, personas.alice)
    page = valid(references(client, pid, _count=2), "Bundle")
    pages = 1
    while next_link := next((link["url"] for link in page["link"] if link["relation"] == "next"), None):
        page = valid(client.get(next_link), "Bundle")
        pages += 1
    assert pages >= 4
    valid(references(client, pid, type="11488-4"), "Bundle")
    assert valid(references(client, patient_id(client, personas.alice)), "Bundle")["total"] == 8
    assert openings(personas.alice, personas.claire) == 1
    # After the opening's validity, listing again is a new consultation (a new entry and notice).
    with time_machine.travel(timezone.now() + OPENING_VALIDITY + timedelta(minutes=1)):
        valid(references(client, patient_id(client, personas.alice)), "Bundle")
    assert openings(personas.alice, personas.claire) == 2


def test_a_block_after_the_opening_takes_effect_at_once__A5(personas):
    client = client_for(personas.david)
    pid = patient_id(client, personas.alice)
    valid(references(client, pid), "Bundle")
    do_block_practitioner(personas.alice, personas.david, actor=personas.alice.user)
    refused = references(client, pid)
    assert refused.status_code in (403, 404) and valid(refused, "OperationOutcome")
    assert openings(personas.alice, personas.david, outcome="denied") == 1


# --- stable Patient ids (item 2) --------------------------------------------------------------------------------


def test_the_patient_id_is_stable_private_and_readable(personas):
    david = client_for(personas.david)
    first = patient_id(david, personas.bernard)
    with time_machine.travel(timezone.now() + timedelta(seconds=1)):
        assert patient_id(david, personas.bernard) == first
    assert personas.bernard.nir not in first and len(first) <= 64
    assert patient_id(client_for(personas.david), personas.bernard) == first  # another token, same practitioner
    claire = client_for(personas.claire)
    assert patient_id(claire, personas.bernard) != first
    foreign = references(claire, first)
    assert foreign.status_code == 404 and outcome_code(foreign) == "no_match"
    assert claire.get(f"/fhir/Patient/{first}").status_code == 404
    patient = valid(david.get(f"/fhir/Patient/{first}"), "Patient")
    assert patient["id"] == first and patient["birthDate"] == "1952-11-03"
    document = valid(references(david, first), "Bundle")["entry"][0]["resource"]
    assert document["subject"]["reference"] == f"Patient/{first}"


def test_the_patient_id_lives_while_found_or_opened__A11(personas):
    david = client_for(personas.david)
    pid = patient_id(david, personas.bernard)
    an_hour_later = timezone.now() + timedelta(seconds=handles.FOUND_SECONDS + 60)
    with time_machine.travel(an_hour_later):
        expired = references(david, pid)
        assert expired.status_code == 404 and outcome_code(expired) == "no_match"  # found more than an hour ago
    assert patient_id(david, personas.bernard) == pid  # looking up again gives the same id back
    valid(references(david, pid), "Bundle")  # opens
    with time_machine.travel(timezone.now() + timedelta(seconds=handles.FOUND_SECONDS + 60)):
        assert valid(david.get(f"/fhir/Patient/{pid}"), "Patient")  # the current opening keeps it usable
    with time_machine.travel(timezone.now() + OPENING_VALIDITY + timedelta(minutes=1)):
        assert references(david, pid).status_code == 404
