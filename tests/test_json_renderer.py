"""The API's JSON renderer (orjson) writes exactly the bytes DRF's own renderer writes (issue 19: byte for byte)."""

import datetime
import decimal
import uuid

import orjson
import pytest
from django.urls import reverse
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer as DRFRenderer

from fhir_server.http import FHIRRenderer
from plumbing import json_renderer
from plumbing.json_renderer import JSONRenderer
from tests.api_fixtures import client_for, open_handle
from tests.test_fhir_api import patient_id, references

PAYLOADS = [
    {"nom": "Hélène Lefèvre-d'Anjou", "emoji": "🩺", "ctrl": 'a\tb\n"c"\\ \x00\x1f', "js": "x\u2028y\u2029z"},
    {"int": 2**63 - 1, "neg": -(2**63), "big": 2**70, "bool": True, "none": None, "list": [1, [2, [3, []]], {}]},
    {
        "at": datetime.datetime(2026, 12, 5, 6, 1, 2, 345678, tzinfo=datetime.UTC),
        "naive": datetime.datetime(2026, 1, 1),
    },
    {"day": datetime.date(2026, 2, 28), "time": datetime.time(13, 5, 9, 120000), "span": datetime.timedelta(hours=3)},
    {"lazy": gettext_lazy("Document introuvable."), "amount": decimal.Decimal("12.50"), "id": uuid.UUID(int=7)},
    {1: "non-string key", "tuple": (1, "deux")},
    ["top-level list", {"nested": {"deeper": [{"a": "b"}]}}],
    "a bare string",
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_the_same_bytes_as_drfs_renderer(payload):
    assert JSONRenderer().render(payload) == DRFRenderer().render(payload)
    assert FHIRRenderer().render(payload) == DRFRenderer().render(payload)


def test_indentation_asked_for_is_drfs():
    payload = {"a": [1, 2], "b": "é"}
    wanted = "application/json; indent=2"
    assert JSONRenderer().render(payload, wanted) == DRFRenderer().render(payload, wanted)
    assert b"\n  " in JSONRenderer().render(payload, wanted)


@pytest.mark.django_db
def test_real_bodies_of_the_rest_list_and_the_fhir_listing_are_drfs_bytes(personas):
    rest = client_for(personas.claire)
    handle = open_handle(rest, personas.alice)
    listing = rest.get(reverse("api-pro-documents", args=[handle]))
    fhir = client_for(personas.claire)
    bundle = references(fhir, patient_id(fhir, personas.alice))
    for response in (listing, bundle):
        assert response.status_code == 200 and len(response.data) > 0
        assert response.content == DRFRenderer().render(response.data)
        # ... and written by orjson, not by the fallback to DRF's renderer
        assert orjson.dumps(response.data, default=json_renderer._default, option=json_renderer._OPTIONS) == (
            response.content
        )
