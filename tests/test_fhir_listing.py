"""The FHIR document listing built from rows is byte for byte the one built from model instances (issue 19).

``DocumentReferences.listing`` reads ``values()`` rows with the total in the page query; its reference,
``listing_reference``, is the former code: ``page()`` over the door's model instances and
``resources.document_reference`` on each. Both answer the same requests over a record holding every kind of
document (held A8, minor's secret A9, masked A4, superseded and replacing, both author kinds, with and without a
title, hash, care setting or unique id, several classes), for the treating doctor, another practitioner and the
patient, with filters, pages and ``_summary=count``; the bodies must be the same bytes.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from access_control.models import TrailEntry
from access_control.rules import Action
from fhir_server.views import DocumentReferences
from records.models import Document, DocumentType
from tests.api_fixtures import client_for
from tests.test_fhir_api import patient_id, references, valid

pytestmark = pytest.mark.django_db


def _variety(alice) -> None:
    """Give Alice's documents every shape a DocumentReference can take."""
    documents = list(Document.objects.filter(profile=alice).order_by("pk"))
    assert len(documents) >= 6
    first, second, third, fourth, fifth, sixth = documents[:6]
    now = timezone.now()
    Document.objects.filter(pk=first.pk).update(held_until=now + timedelta(days=10), sha1="a" * 40)  # A8
    Document.objects.filter(pk=second.pk).update(
        hidden_from_representatives=True,
        unique_id="urn:oid:1.2.3.4.5",
        facility_type="SA07",
        practice_setting="SA07",
        sha1="",
    )  # A9
    Document.objects.filter(pk=third.pk).update(status=Document.Status.SUPERSEDED)
    Document.objects.filter(pk=fourth.pk).update(replaces_id=third.pk, sha1="0123456789abcdef" * 2 + "01234567")
    Document.objects.filter(pk=fifth.pk).update(
        held_until=now - timedelta(days=1), hold_released_at=now - timedelta(days=2), facility_type="SA01"
    )  # a released hold; a facility without a practice setting gives no care setting
    Document.objects.filter(pk=sixth.pk).update(care_date=now.date() - timedelta(days=4000), sha1="")  # no hash


def _both(client, monkeypatch, path_params: dict) -> tuple[bytes, bytes]:
    """The answer of the row listing and of its reference to the same request (a current opening stands)."""
    fast = client.get("/fhir/DocumentReference", path_params)
    with monkeypatch.context() as patched:
        patched.setattr(DocumentReferences, "listing", DocumentReferences.listing_reference)
        reference = client.get("/fhir/DocumentReference", path_params)
    assert fast.status_code == reference.status_code == 200, (fast.status_code, reference.content[:300])
    assert fast["Content-Type"] == reference["Content-Type"]
    return fast.content, reference.content


REQUESTS = [
    {"_count": "100"},
    {},
    {"_count": "3"},
    {"_count": "3", "page": "2"},
    {"_count": "3", "page": "40"},  # past the last page: no entries, the total still given
    {"_count": "0"},
    {"_summary": "count"},
    {"status": "superseded"},
    {"category": "10,11"},
    {"security-label": "R"},
    {"type": "11488-4", "_count": "1"},
    {"date": f"ge{(timezone.now() - timedelta(days=3650)).date().isoformat()}"},
]


@pytest.mark.parametrize("who", ["claire", "david", "alice"])
def test_the_row_listing_is_byte_for_byte_the_model_listing__A4_A8_A9(personas, monkeypatch, who):
    alice = personas.alice
    _variety(alice)
    actor = {"claire": personas.claire, "david": personas.david, "alice": personas.alice_user}[who]
    client = client_for(actor)
    pid = patient_id(client, alice)
    valid(references(client, pid), "Bundle")  # the consultation (practitioners): the comparisons below list again
    kinds = set()
    for params in REQUESTS:
        fast, reference = _both(client, monkeypatch, {"patient": pid, **params})
        assert fast == reference, params
        bundle = valid(references(client, pid, **params), "Bundle")
        for entry in bundle["entry"]:
            resource = entry["resource"]
            kinds.add(("status", resource["status"]))
            kinds.add(("author", resource["author"][0]["reference"].split("/")[0]))
            kinds.add(("relates", "relatesTo" in resource))
            kinds.add(("hash", "hash" in resource["content"][0]["attachment"]))
            kinds.add(("setting", "facilityType" in resource["context"]))
            kinds.add(("class", resource["category"][0]["coding"][0]["code"]))
            kinds.update(("label", c["code"]) for label in resource["securityLabel"] for c in label["coding"])
    # The record really held every kind of document for this reader.
    assert {("status", "current"), ("status", "superseded"), ("relates", True), ("relates", False)} <= kinds
    assert {("hash", True), ("hash", False), ("setting", True), ("setting", False)} <= kinds
    assert {("author", "Practitioner"), ("label", "R"), ("label", "N")} <= kinds
    assert len({code for kind, code in kinds if kind == "class"}) >= 3
    if who == "alice":
        assert ("label", "MASQUE_PS") in kinds and ("author", "Patient") in kinds
    else:
        assert ("label", "MASQUE_PS") not in kinds  # A4: practitioners are never told of masks
        assert ("label", "INVISIBLE_PATIENT") in kinds and ("label", "INVISIBLE_REPRESENTANTS_LEGAUX") in kinds


def test_the_row_listing_speaks_the_requests_language(personas, monkeypatch):
    """The class label follows the request's language, as ``get_class_code_display`` did."""
    client = client_for(personas.claire)
    pid = patient_id(client, personas.alice)
    valid(references(client, pid), "Bundle")
    shown = {}
    for language in ("en", "fr", "en"):
        client.credentials(HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"], HTTP_ACCEPT_LANGUAGE=language)
        fast, reference = _both(client, monkeypatch, {"patient": pid, "_count": "100"})
        assert fast == reference, language
        bundle = valid(references(client, pid, _count=100), "Bundle")
        shown[language] = {e["resource"]["category"][0]["coding"][0]["display"] for e in bundle["entry"]}
    with translation.override("en"):
        english = {str(label) for _code, label in DocumentType.DocumentClass.choices}
    assert shown["en"] <= english and shown["fr"] != shown["en"]


def test_listing_again_is_three_queries_and_no_new_entry__T1(personas):
    """Token, the profile with the opening and the record-level decision, the page with its total."""
    client = client_for(personas.claire)
    pid = patient_id(client, personas.alice)
    valid(references(client, pid), "Bundle")
    before = TrailEntry.objects.filter(action=Action.OPEN_RECORD, profile=personas.alice).count()
    with CaptureQueriesContext(connection) as queries:
        bundle = valid(references(client, pid, _count=50), "Bundle")
    assert bundle["total"] == len(bundle["entry"]) > 0
    assert len(queries) == 3, [q["sql"][:120] for q in queries]
    assert TrailEntry.objects.filter(action=Action.OPEN_RECORD, profile=personas.alice).count() == before
