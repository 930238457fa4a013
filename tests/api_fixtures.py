"""Helpers for the REST API and FHIR tests: tokens made through ``do_create_token``, authenticated clients,
and the found or opened patient handles of the practitioner API."""

import io

from django.urls import reverse
from rest_framework.test import APIClient

from access_control.tokens import do_create_token
from records.personas import minimal_pdf


def token_for(user, *, scope: str = "write", name: str = "Logiciel de cabinet", days: int = 30) -> str:
    return do_create_token(user, name=name, scope=scope, lifetime_days=days, actor=user).secret


def client_for(actor, *, scope: str = "write") -> APIClient:
    """An API client with a fresh token of ``actor`` (a Practitioner or a patient's User)."""
    user = getattr(actor, "user", actor)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user, scope=scope)}")
    return client


def stepped_up_client(user) -> APIClient:
    """An API client on a verified portal session whose step-up re-check is fresh (sensitive operations)."""
    from django.utils import timezone

    from patients.portal import STEP_UP_SESSION_KEY
    from tests.signin_fixtures import verified_client

    client = verified_client(APIClient(), user)
    session = client.session
    session[STEP_UP_SESSION_KEY] = int(timezone.now().timestamp()) + 300
    session.save()
    return client


def search(client, profile, **extra):
    body = {"nir": profile.nir, "birth_date": profile.birth_date.isoformat(), **extra}
    return client.post(reverse("api-pro-search"), body, format="json")


def found_handle(client, profile) -> str:
    response = search(client, profile)
    assert response.status_code == 200, response.content
    return response.json()["handle"]


def open_handle(client, profile, **body) -> str:
    """Find the patient and open the record (normal mode with the attestation unless ``body`` says otherwise)."""
    handle = found_handle(client, profile)
    response = client.post(reverse("api-pro-open", args=[handle]), body or {"attests_care_team": True}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["handle"]


def pdf_file(name: str = "compte-rendu.pdf", title: str = "Compte rendu") -> io.BytesIO:
    upload = io.BytesIO(minimal_pdf(title, ["Texte du compte rendu."]))
    upload.name = name
    return upload


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]["code"]
