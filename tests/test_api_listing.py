"""The practitioner API's document list read from SQL compiled once (issue 19): the same pages as the ORM's.

The unfiltered list comes from ``plumbing.sql.CompiledRows`` (one compiled statement per access mode); the
filtered one, ``page=last`` and pages past the end from the ORM. Both must give the serializer's body, byte for
byte, in every mode; and a document of another record stays unknown through an opened handle.
"""

import json

import pytest
from django.urls import reverse

from access_control.api import visible_documents
from access_control.models import TrailEntry
from access_control.rules import Action, Reason
from practitioners.serializers import DocumentSerializer
from records.models import Document
from tests.api_fixtures import client_for, error_code, open_handle

pytestmark = pytest.mark.django_db


def _page(client, handle, **params):
    response = client.get(reverse("api-pro-documents", args=[handle]), params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(
    ("who", "opening"),
    [
        ("claire", {"attests_care_team": True}),  # the treating doctor: masked documents too (A4, A6)
        ("david", {"attests_care_team": True}),  # masks apply (A4)
        ("david", {"mode": "bris_de_glace", "justification": "Patiente inconsciente."}),  # A7: masks still apply
    ],
)
def test_every_page_is_the_serializers_in_every_mode__A4_A7(personas, who, opening):
    practitioner = getattr(personas, who)
    client = client_for(practitioner)
    handle = open_handle(client, personas.alice, **opening)
    mode = opening.get("mode", "normal")
    expected = DocumentSerializer(visible_documents(practitioner, personas.alice, mode=mode), many=True).data
    assert len(expected) >= 4
    assert json.dumps(_page(client, handle, page_size=100)["results"]) == json.dumps(expected)
    for size in (1, 3):
        pages, page = [], 1
        while True:
            body = _page(client, handle, page_size=size, page=page)
            assert body["count"] == len(expected)
            pages.extend(body["results"])
            if body["next"] is None:
                break
            page += 1
        assert json.dumps(pages) == json.dumps(expected)
        last = _page(client, handle, page_size=size, page="last")
        assert json.dumps(last["results"]) == json.dumps(expected[-(len(expected) % size or size) :])
    beyond = client.get(reverse("api-pro-documents", args=[handle]), {"page_size": 1, "page": len(expected) + 1})
    assert beyond.status_code == 404
    code = expected[0]["type"]["code"]
    filtered = _page(client, handle, type=code, page_size=100)["results"]
    assert json.dumps(filtered) == json.dumps([row for row in expected if row["type"]["code"] == code])


def test_another_records_document_is_unknown_through_an_opened_handle__A5_T1(personas):
    """``open_document(..., profile_id=)``: Bernard's document through Alice's handle is a 404 like an unknown id,
    and never traced as an opening of Bernard's document, even though his record is opened too."""
    client = client_for(personas.david)
    alice = open_handle(client, personas.alice)
    open_handle(client, personas.bernard)
    theirs = Document.objects.filter(profile=personas.bernard).first()
    assert theirs is not None
    response = client.get(reverse("api-pro-content", args=[alice, theirs.pk]))
    unknown = client.get(reverse("api-pro-content", args=[alice, 2**62]))
    assert response.status_code == unknown.status_code == 404
    assert error_code(response) == error_code(unknown) == "document_not_found"
    assert response.content == unknown.content
    entries = TrailEntry.objects.filter(action=Action.OPEN_DOCUMENT, document_id=theirs.pk)
    assert not entries.filter(outcome=TrailEntry.Outcome.ALLOWED).exists()
    assert entries.get().reason == Reason.DOCUMENT_NOT_FOUND
