"""Helpers for the practitioner portal's tests: a signed-in practitioner, a found or opened patient."""

import re

import pytest
from django.urls import reverse

from tests.signin_fixtures import verified_client

CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def signed_in(client, practitioner):
    """``client`` signed in as ``practitioner`` (password and second factor done, session current)."""
    return verified_client(client, practitioner.user)


def find(client, profile, *, birth_date=None, birth_name=None):
    data = {"nir": profile.nir, "birth_date": (birth_date or profile.birth_date).isoformat()}
    if birth_name is not None:
        data["birth_name"] = birth_name
    return client.post(reverse("practitioners:find"), data)


def token_of(response) -> str:
    """The patient token of a redirect to the patient's page."""
    assert response.status_code == 302, response.status_code
    match = re.search(r"/pro/patient/([^/]+)/", response["Location"])
    assert match, response["Location"]
    return match.group(1)


def open_record(client, profile) -> str:
    """Find the patient and open their record with the care-team attestation; returns the token."""
    token = token_of(find(client, profile))
    response = client.post(reverse("practitioners:patient", args=[token]), {"attests_care_team": "on"})
    assert response.status_code == 302 and response["Location"].endswith("/dossier/"), response
    return token


def without_csrf(content: bytes) -> bytes:
    return CSRF.sub(b"", content)


def form_token(response) -> str:
    return FORM_TOKEN.search(response.content.decode()).group(1)


SEEDS = [  # (data migration, the model it fills), in dependency order
    ("records.migrations.0002_document_types", "records.DocumentType"),
    ("practitioners.migrations.0003_professions", "practitioners.Profession"),
    ("access_control.migrations.0004_access_matrix", "access_control.AccessRule"),
]


@pytest.fixture
def reference_data(transactional_db):
    """The data migrations' rows (document types, professions, access matrix, categories), present again.

    A transactional test ends with a flush that empties every table, those filled by data migrations too, and
    Django's ``serialized_rollback`` cannot restore them after another test's flush re-created the content
    types. So the seeds run again, in whatever order the transactional tests of the session came.
    """
    import importlib

    from django.apps import apps

    for module, model in SEEDS:
        if not apps.get_model(model).objects.exists():
            importlib.import_module(module).seed(apps, None)
