"""Connected apps (SMART on FHIR, issue 17): discovery, the OAuth 2 flow, the app's FHIR reads and their limits.

The client is authlib's ``OAuth2Session`` against the live server (token exchange, refresh, FHIR reads); the
patient's consent is given on the portal's page by a signed-in test client (the browser walk is in
tests/test_smart_browser.py). Rules: an app never sees more than its patient (A8 holds, A9 minor's secret), and
each of its reads is in the profile's trail under its name (T1).
"""

import io
from urllib.parse import quote

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from access_control.actions import do_deposit_document
from access_control.api import documents_visible_to_patient
from access_control.models import TrailEntry
from access_control.trail import verify_chain
from accounts.app_server import AppAction
from accounts.models import AppConnection
from records.models import Document
from records.personas import minimal_pdf
from tests.api_fixtures import token_for
from tests.portal_fixtures import signed_in
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)
from tests.smart_fixtures import (
    APP_NAME,
    NO_TRAIL_SCOPES,
    app_session,
    authorisation_url,
    consent,
    path_of,
    registered_app,  # noqa: F401  (fixture)
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("reference_data", "registered_app")]


def connect(client, live_server, profile, *, scopes=None):
    """authlib's flow up to the token: authorisation URL, the patient's consent, code exchange with PKCE."""
    session = app_session() if scopes is None else app_session(scopes)
    url, verifier = authorisation_url(session, live_server.url)
    answer = consent(client, url, profile)
    assert answer.status_code == 302, answer.content[:500]
    # RFC 9207: the issuer comes with the code (the consent was given to the test client's host).
    assert f"&iss={quote('http://testserver', safe='')}" in answer["Location"]
    token = session.fetch_token(
        f"{live_server.url}/oauth/token/", authorization_response=answer["Location"], code_verifier=verifier
    )
    return session, token


def fhir(session, live_server, path: str):
    return session.get(f"{live_server.url}/fhir/{path}", headers={"Accept": "application/fhir+json"})


def test_smart_configuration_names_the_endpoints_scopes_and_s256(client):
    for path in ("/fhir/.well-known/smart-configuration", "/.well-known/smart-configuration"):
        body = client.get(path).json()
        assert body["authorization_endpoint"].endswith("/applications/autoriser/")
        assert body["token_endpoint"].endswith("/oauth/token/")
        assert body["revocation_endpoint"].endswith("/oauth/revoke/")
        assert body["code_challenge_methods_supported"] == ["S256"]
        assert "patient/DocumentReference.rs" in body["scopes_supported"]
        assert "patient/AuditEvent.rs" in body["scopes_supported"]
        assert {"launch-standalone", "context-standalone-patient", "permission-v2"} <= set(body["capabilities"])


def test_the_capability_statement_declares_smart_on_fhir_and_its_endpoints(client):
    security = client.get("/fhir/metadata").json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert security["extension"][0]["url"].endswith("/oauth-uris")
    assert uris["authorize"].endswith("/applications/autoriser/") and uris["token"].endswith("/oauth/token/")


def test_alices_app_reads_what_she_sees_and_each_read_is_traced_under_its_name__T1(client, live_server, personas):
    alice = personas.alice
    session, token = connect(signed_in(client, alice), live_server, alice)
    assert token["token_type"].lower() == "bearer" and token["access_token"].startswith("carnetapp_")
    assert "refresh_token" in token  # offline_access
    patient_id = token["patient"]

    patient = fhir(session, live_server, f"Patient/{patient_id}")
    assert patient.status_code == 200 and patient.json()["name"][0]["family"] == alice.birth_name
    bundle = fhir(session, live_server, f"DocumentReference?patient={patient_id}").json()
    seen = {int(entry["resource"]["id"]) for entry in bundle["entry"]}
    assert seen == set(documents_visible_to_patient(alice.user, alice).values_list("pk", flat=True))
    first = sorted(seen)[0]
    binary = session.get(f"{live_server.url}/fhir/Binary/{first}")
    assert binary.status_code == 200 and binary.content[:4] in (b"%PDF", b"\x89PNG", b"\xff\xd8\xff\xe0")
    trail = fhir(session, live_server, f"AuditEvent?patient={patient_id}")
    assert trail.status_code == 200 and trail.json()["total"] > 0
    assert fhir(session, live_server, "Patient/1.forged").status_code == 404

    reads = TrailEntry.objects.filter(profile=alice, action=AppAction.READ).order_by("seq")
    assert [e.detail for e in reads] == [
        "Patient/read",
        "DocumentReference?",
        "Binary/read",
        "AuditEvent?",
    ]
    assert {e.client_app for e in reads} == {APP_NAME}
    assert {e.actor_user_id for e in reads} == {alice.user_id}
    assert TrailEntry.objects.filter(profile=alice, action=AppAction.CONNECT, client_app=APP_NAME).count() == 1
    assert verify_chain(alice.pk) == []  # T2: the app's name is part of each entry's hash
    assert AppConnection.objects.get(profile=alice).last_used_at is not None


def test_a_refreshed_token_keeps_the_same_patient(client, live_server, personas):
    alice = personas.alice
    session, token = connect(signed_in(client, alice), live_server, alice)
    fresh = session.refresh_token(f"{live_server.url}/oauth/token/", refresh_token=token["refresh_token"])
    assert fresh["access_token"] != token["access_token"] and fresh["patient"] == token["patient"]
    assert fhir(session, live_server, f"Patient/{fresh['patient']}").status_code == 200


def test_a_wrong_pkce_verifier_gets_no_token(client, live_server, personas):
    alice = personas.alice
    session = app_session()
    url, _verifier = authorisation_url(session, live_server.url)
    answer = consent(signed_in(client, alice), url, alice)
    with pytest.raises(OAuthError, match="invalid_grant"):
        session.fetch_token(
            f"{live_server.url}/oauth/token/",
            authorization_response=answer["Location"],
            code_verifier="x" * 50,
        )


def test_a_code_is_good_once(client, live_server, personas):
    alice = personas.alice
    session = app_session()
    url, verifier = authorisation_url(session, live_server.url)
    answer = consent(signed_in(client, alice), url, alice)
    token_url = f"{live_server.url}/oauth/token/"
    session.fetch_token(token_url, authorization_response=answer["Location"], code_verifier=verifier)
    with pytest.raises(OAuthError, match="invalid_grant"):
        app_session().fetch_token(token_url, authorization_response=answer["Location"], code_verifier=verifier)


def test_a_request_without_pkce_or_with_plain_pkce_is_refused(client, personas):
    signed_in(client, personas.alice)
    base = f"{reverse('patients:authorise_app')}?client_id=mon-suivi-sante&response_type=code"
    base += "&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=launch%2Fpatient"
    without = client.get(base)
    assert without.status_code == 302 and "error=invalid_request" in without["Location"]
    plain = client.get(f"{base}&code_challenge={'a' * 43}&code_challenge_method=plain")
    assert plain.status_code == 302 and "error=" in plain["Location"]
    assert not AppConnection.objects.exists()


def test_an_unknown_app_or_redirect_gets_a_page_not_a_redirect(client, personas):
    signed_in(client, personas.alice)
    unknown = client.get(f"{reverse('patients:authorise_app')}?client_id=nobody&response_type=code")
    assert unknown.status_code == 400 and "Location" not in unknown
    elsewhere = client.get(
        f"{reverse('patients:authorise_app')}?client_id=mon-suivi-sante&response_type=code"
        "&redirect_uri=https%3A%2F%2Fattacker.example%2Fcb"
    )
    assert elsewhere.status_code == 400 and "Location" not in elsewhere


def test_refusing_sends_access_denied_and_connects_nothing(client, live_server, personas):
    url, _verifier = authorisation_url(app_session(), live_server.url)
    answer = consent(signed_in(client, personas.alice), url, personas.alice, decision="deny")
    assert answer.status_code == 302 and "error=access_denied" in answer["Location"]
    assert not AppConnection.objects.exists()


def test_the_consent_page_names_the_app_its_publisher_and_what_it_will_see(client, live_server, personas):
    url, _verifier = authorisation_url(app_session(NO_TRAIL_SCOPES), live_server.url)
    page = signed_in(client, personas.alice).get(path_of(url))
    text = page.content.decode()
    assert APP_NAME in text and "Santé Facile SAS" in text
    assert "Les documents du dossier" in text and "historique des accès au dossier" not in text
    assert "Fanny" in text  # Alice speaks for Fanny (L10): she may open Fanny's profile instead
    policy = page["Content-Security-Policy"]
    assert "form-action 'self' http://127.0.0.1" in policy and "script-src 'self'" in policy


def test_the_consent_page_asks_to_sign_in_first(client, live_server, personas):
    url, _verifier = authorisation_url(app_session(), live_server.url)
    answer = client.get(path_of(url))
    assert answer.status_code == 302 and answer["Location"].startswith(reverse("patients:login"))


def test_a_profile_the_patient_does_not_speak_for_cannot_be_chosen__L10(client, live_server, personas):
    url, _verifier = authorisation_url(app_session(), live_server.url)
    answer = consent(signed_in(client, personas.alice), url, personas.bernard)
    assert answer.status_code == 400
    assert not AppConnection.objects.exists()


def test_an_app_without_the_trail_scope_cannot_read_the_trail(client, live_server, personas):
    alice = personas.alice
    session, token = connect(signed_in(client, alice), live_server, alice, scopes=NO_TRAIL_SCOPES)
    answer = fhir(session, live_server, f"AuditEvent?patient={token['patient']}")
    assert answer.status_code == 403 and answer.json()["resourceType"] == "OperationOutcome"
    assert fhir(session, live_server, f"DocumentReference?patient={token['patient']}").status_code == 200


def test_a_revoked_app_is_refused_at_once_and_the_revocation_is_traced__T1(client, live_server, personas):
    alice = personas.alice
    session, token = connect(signed_in(client, alice), live_server, alice)
    connection = AppConnection.objects.get(profile=alice)
    assert client.post(reverse("patients:connected_app_revoke", args=[connection.pk])).status_code == 302
    assert fhir(session, live_server, f"Patient/{token['patient']}").status_code == 401
    with pytest.raises(OAuthError):
        session.refresh_token(f"{live_server.url}/oauth/token/", refresh_token=token["refresh_token"])
    assert TrailEntry.objects.filter(profile=alice, action=AppAction.REVOKE, client_app=APP_NAME).count() == 1
    assert (
        "Aucune application n'a accès à votre dossier."
        in client.get(reverse("patients:connected_apps")).content.decode()
    )


def test_the_app_may_revoke_its_own_token(client, live_server, personas):
    alice = personas.alice
    session, token = connect(signed_in(client, alice), live_server, alice)
    session.revoke_token(f"{live_server.url}/oauth/revoke/", token=token["access_token"])
    assert fhir(session, live_server, f"Patient/{token['patient']}").status_code == 401


def test_a_representatives_app_never_sees_the_minors_secret__A9(client, live_server, personas):
    fanny, alice = personas.fanny, personas.alice
    secret = Document.objects.get(profile=fanny, hidden_from_representatives=True)
    session, token = connect(signed_in(client, alice), live_server, fanny)
    bundle = fhir(session, live_server, f"DocumentReference?patient={token['patient']}").json()
    seen = {int(entry["resource"]["id"]) for entry in bundle.get("entry", [])}
    assert secret.pk not in seen
    assert seen == set(documents_visible_to_patient(alice.user, fanny).values_list("pk", flat=True))
    assert fhir(session, live_server, f"DocumentReference/{secret.pk}").status_code == 404
    assert session.get(f"{live_server.url}/fhir/Binary/{secret.pk}").status_code == 404
    events = fhir(session, live_server, f"AuditEvent?patient={token['patient']}&_count=100").json()
    about = [e for e in events.get("entry", []) if f"DocumentReference/{secret.pk}" in str(e)]
    assert about == []
    # The app reads Fanny's profile only, never Alice's own.
    assert fhir(session, live_server, f"Patient/{token['patient']}").json()["name"][0]["given"][0] == "Fanny"


def test_a_held_document_stays_hidden_from_the_app__A8(client, live_server, personas):
    alice = personas.alice
    held = do_deposit_document(
        alice,
        actor=personas.david,
        fileobj=io.BytesIO(minimal_pdf("Annonce", ["Résultat à annoncer."])),
        document_type="11502-2",
        title="Résultat à annoncer",
        hold=True,
    )
    session, token = connect(signed_in(client, alice), live_server, alice)
    bundle = fhir(session, live_server, f"DocumentReference?patient={token['patient']}").json()
    assert held.pk not in {int(entry["resource"]["id"]) for entry in bundle["entry"]}
    assert fhir(session, live_server, f"DocumentReference/{held.pk}").status_code == 404
    assert session.get(f"{live_server.url}/fhir/Binary/{held.pk}").status_code == 404


def test_app_tokens_open_no_practitioner_or_rest_endpoint_and_write_nothing(client, live_server, personas):
    alice = personas.alice
    session, token = connect(signed_in(client, alice), live_server, alice)
    assert session.get(f"{live_server.url}/api/v1/practitioner/my-patients/").status_code == 401
    assert session.get(f"{live_server.url}/api/v1/patient/profiles/").status_code == 401
    deposit = session.post(
        f"{live_server.url}/fhir/DocumentReference",
        json={"resourceType": "DocumentReference"},
        headers={"Content-Type": "application/fhir+json"},
    )
    assert deposit.status_code == 405
    # And the other way round: Carnet's own API token is not an app token, and still works as before.
    own = requests.get(
        f"{live_server.url}/fhir/Patient",
        headers={"Authorization": f"Bearer {token_for(alice.user)}"},
        timeout=10,
    )
    assert own.status_code != 401


def test_an_expired_app_token_is_refused(client, live_server, personas):
    from oauth2_provider.models import AccessToken

    alice = personas.alice
    session, token = connect(signed_in(client, alice), live_server, alice)
    AccessToken.objects.update(expires=timezone.now())
    assert fhir(session, live_server, f"Patient/{token['patient']}").status_code == 401
    bad = APIClient().get("/fhir/Patient", HTTP_AUTHORIZATION="Bearer carnetapp_forged")
    assert bad.status_code == 401 and bad["WWW-Authenticate"].startswith("Bearer")


def test_the_connected_apps_page_lists_each_connection_in_constant_queries(
    client, live_server, personas, django_assert_num_queries
):
    alice, fanny = personas.alice, personas.fanny
    signed_in(client, alice)
    connect(client, live_server, alice)
    with django_assert_num_queries(9):
        client.get(reverse("patients:connected_apps"))
    connect(client, live_server, fanny)
    with django_assert_num_queries(9):  # the same with one more connection: one query for all of them
        page = client.get(reverse("patients:connected_apps"))
    text = page.content.decode()
    assert text.count(f"Retirer l'accès de {APP_NAME}") == 2
    assert "Santé Facile SAS" in text and "Les documents du dossier" in text


def test_the_patients_trail_names_the_app_beside_her_name__T1_T3(client, live_server, personas):
    alice = personas.alice
    session, token = connect(signed_in(client, alice), live_server, alice)
    fhir(session, live_server, f"DocumentReference?patient={token['patient']}")
    page = client.get(f"{reverse('patients:trail')}?who=mine").content.decode()
    assert f"par l'application {APP_NAME}" in page and "Lecture par une application connectée" in page
    events = fhir(session, live_server, f"AuditEvent?patient={token['patient']}").json()
    agents = [e["resource"]["agent"] for e in events["entry"] if e["resource"]["subtype"][0]["code"] == "app_read"]
    assert agents and all(a[1]["who"]["display"] == APP_NAME for a in agents)


def test_staff_register_an_app_with_its_listing_in_the_admin(client):
    from tests.admin_fixtures import make_staff_member
    from tests.signin_fixtures import verified_client

    admin = make_staff_member("admin.apps", None, is_superuser=True)
    page = verified_client(client, admin).get("/admin/oauth2_provider/application/add/")
    text = page.content.decode()
    assert page.status_code == 200 and 'name="carnet_listing-0-publisher"' in text


def test_a_confidential_app_authenticates_with_its_secret_and_pkce(client, live_server, personas):
    from authlib.integrations.requests_client import OAuth2Session
    from oauth2_provider.models import Application

    from tests.smart_fixtures import ALL_SCOPES, REDIRECT_URI

    Application.objects.create(
        name="Cabinet en ligne",
        client_id="cabinet-en-ligne",
        client_secret="un-secret-de-test-assez-long",  # noqa: S106  stored hashed by django-oauth-toolkit
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT_URI,
        algorithm="",
    )
    alice = personas.alice

    def session(secret):
        return OAuth2Session(
            "cabinet-en-ligne",
            secret,
            redirect_uri=REDIRECT_URI,
            scope=" ".join(ALL_SCOPES),
            code_challenge_method="S256",
        )

    for secret, works in (("mauvais-secret", False), ("un-secret-de-test-assez-long", True)):
        app = session(secret)
        url, verifier = authorisation_url(app, live_server.url)
        answer = consent(signed_in(client, alice), url, alice)
        fetch = lambda app=app, answer=answer, verifier=verifier: app.fetch_token(  # noqa: E731
            f"{live_server.url}/oauth/token/", authorization_response=answer["Location"], code_verifier=verifier
        )
        if works:
            assert fetch()["patient"]
        else:
            with pytest.raises(OAuthError, match="invalid_client"):
                fetch()
