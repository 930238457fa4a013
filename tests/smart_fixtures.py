"""Helpers for the connected apps' tests (issue 17): a registered app, the consent, and tokens from authlib.

The app is registered the way staff do it in the admin (a django-oauth-toolkit ``Application`` and its
``AppListing``). The client side is authlib's ``OAuth2Session`` (a library nobody here wrote): it builds the
authorisation URL with its PKCE S256 challenge, exchanges the code and refreshes tokens against the live server.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from oauth2_provider.models import Application

from accounts.models import AppListing
from accounts.smart import DOCUMENTS_READ, LAUNCH_PATIENT, OFFLINE_ACCESS, PATIENT_READ, TRAIL_READ

APP_NAME = "Mon Suivi Santé"
CLIENT_ID = "mon-suivi-sante"
REDIRECT_URI = "http://127.0.0.1/callback"
ALL_SCOPES = [LAUNCH_PATIENT, PATIENT_READ, DOCUMENTS_READ, TRAIL_READ, OFFLINE_ACCESS]
NO_TRAIL_SCOPES = [LAUNCH_PATIENT, PATIENT_READ, DOCUMENTS_READ]


@pytest.fixture
def registered_app(db):
    """A public client (PKCE, no secret), registered with its publisher and description."""
    application = Application.objects.create(
        name=APP_NAME,
        client_id=CLIENT_ID,
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT_URI,
        client_secret="",
        algorithm="",
    )
    AppListing.objects.create(
        application=application,
        publisher="Santé Facile SAS",
        description="Suivez vos résultats d'analyses et vos comptes rendus au même endroit.",
    )
    return application


def app_session(scopes=ALL_SCOPES) -> OAuth2Session:
    return OAuth2Session(
        CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        scope=" ".join(scopes),
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


def authorisation_url(session: OAuth2Session, base: str) -> tuple[str, str]:
    """authlib's authorisation URL (with its S256 challenge) and the code verifier it must be sent with."""
    verifier = generate_token(48)
    url, _state = session.create_authorization_url(f"{base}/applications/autoriser/", code_verifier=verifier)
    return url, verifier


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def consent(client, url: str, profile, *, decision: str = "allow"):
    """The signed-in patient agrees (or refuses) on the consent page; returns the page's answer to the POST."""
    page = client.get(path_of(url))
    assert page.status_code == 200, page.content[:500]
    return client.post(path_of(url), {"profile": profile.pk, "decision": decision})


def code_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["code"][0]
