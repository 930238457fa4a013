"""Pro Santé Connect access tokens on the REST and FHIR APIs, issued by a real provider (issue 17, item 2).

Every token here was issued by npm ``oidc-provider`` posing as PSC (tests/oidc_fixtures.py), after a full
authorisation-code flow with PKCE by the practice software's client: valid, expired, for another audience,
from another issuer, signed with a rotated key, without Carnet's scope, for an unknown RPPS.
"""

import time

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from access_control.models import TrailEntry
from accounts.jwt_tokens import JWKS
from fhir_server.resources import NIR_SYSTEM
from tests.api_fixtures import client_for, error_code, pdf_file, search
from tests.oidc_fixtures import OTHER_RESOURCE, SHORT_RESOURCE, OpenIdProvider, signing_key

pytestmark = pytest.mark.django_db

UNKNOWN_RPPS = "10009999994"


@pytest.fixture(autouse=True)
def _fresh_keys():
    JWKS.clear()  # each test starts with Carnet knowing none of the provider's keys
    yield
    JWKS.clear()


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def fhir_search(client, profile):
    params = {"identifier": f"{NIR_SYSTEM}|{profile.nir}", "birthdate": profile.birth_date.isoformat()}
    return client.get("/fhir/Patient", params)


def fhir_code(response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return body["issue"][0]["details"]["coding"][0]["code"]


def test_a_valid_token_finds_and_opens_on_rest_and_fhir_with_its_level_in_the_trail__A11_T1(personas, psc_provider):
    client = bearer(psc_provider.access_token(personas.david.rpps, acr="eidas3", scope="openid carnet:read"))
    found = search(client, personas.alice)
    assert found.status_code == 200, found.content
    opened = client.post(reverse("api-pro-open", args=[found.json()["handle"]]), {"attests_care_team": True})
    assert opened.status_code == 200, opened.content
    entry = TrailEntry.objects.filter(profile=personas.alice, action="open_record").latest("pk")
    assert (entry.actor_practitioner_id, entry.assurance) == (personas.david.pk, "eidas3")
    bundle = fhir_search(client, personas.alice)
    assert bundle.status_code == 200 and bundle.json()["total"] == 1
    assert JWKS.fetches == 1  # the keys were fetched once, then served from the cache


def test_a_read_token_cannot_write_like_carnets_own_read_tokens(personas, psc_provider):
    client = bearer(psc_provider.access_token(personas.david.rpps, scope="openid carnet:read"))
    handle = search(client, personas.alice).json()["handle"]
    body = {"file": pdf_file(), "document_type": "11488-4", "title": "Compte rendu"}
    response = client.post(reverse("api-pro-documents", args=[handle]), body, format="multipart")
    assert response.status_code == 403 and error_code(response) == "insufficient_scope"


def test_a_write_token_may_deposit(personas, psc_provider):
    client = bearer(psc_provider.access_token(personas.david.rpps, scope="openid carnet:write"))
    handle = search(client, personas.alice).json()["handle"]
    body = {"file": pdf_file(), "document_type": "11488-4", "title": "Compte rendu PSC"}
    response = client.post(reverse("api-pro-documents", args=[handle]), body, format="multipart")
    assert response.status_code == 201, response.content


def test_a_token_without_carnets_scope_is_refused(personas, psc_provider):
    client = bearer(psc_provider.access_token(personas.david.rpps, scope="openid"))
    response = search(client, personas.alice)
    assert response.status_code == 403 and error_code(response) == "insufficient_scope"
    assert "carnet:read" in response.json()["error"]["message"]


def test_an_expired_token_is_refused_with_a_clear_401(personas, psc_provider, settings):
    settings.CARNET_PSC = {**settings.CARNET_PSC, "leeway_seconds": 0}
    client = bearer(psc_provider.access_token(personas.david.rpps, resource=SHORT_RESOURCE))
    time.sleep(2.1)  # the provider made it valid for 1 second
    response = search(client, personas.alice)
    assert response.status_code == 401 and error_code(response) == "invalid_token"
    assert response.json()["error"]["message"] == "Jeton Pro Santé Connect expiré."
    assert response["WWW-Authenticate"].startswith("Bearer")
    fhir = fhir_search(client, personas.alice)
    assert fhir.status_code == 401 and fhir_code(fhir) == "invalid_token"  # an OperationOutcome on FHIR


def test_a_token_for_another_audience_is_refused(personas, psc_provider):
    client = bearer(psc_provider.access_token(personas.david.rpps, resource=OTHER_RESOURCE))
    response = search(client, personas.alice)
    assert response.status_code == 401 and "audience" in response.json()["error"]["message"]
    assert fhir_code(fhir_search(client, personas.alice)) == "invalid_token"


def test_a_token_from_another_issuer_is_refused_even_signed_with_the_same_key(personas, psc_provider):
    impostor = OpenIdProvider({**psc_provider.config, "port": 0}).start()  # same keys, another issuer URL
    try:
        token = impostor.access_token(personas.david.rpps)
    finally:
        impostor.stop()
    response = search(bearer(token), personas.alice)
    assert response.status_code == 401 and error_code(response) == "invalid_token"


def test_a_rotated_key_is_fetched_once_and_refetches_have_a_floor(personas, psc_provider):
    old = bearer(psc_provider.access_token(personas.david.rpps))
    assert search(old, personas.alice).status_code == 200 and JWKS.fetches == 1
    psc_provider.restart(keys=[signing_key("psc-2"), signing_key("psc-1")])  # PSC rotates: psc-2 signs now
    rotated = bearer(psc_provider.access_token(personas.david.rpps))
    assert search(rotated, personas.alice).status_code == 200 and JWKS.fetches == 2  # unknown kid: refetched
    assert search(old, personas.alice).status_code == 200 and JWKS.fetches == 2  # the old key is still published
    psc_provider.restart(keys=[signing_key("psc-3")])  # another rotation within the floor (60 s)
    again = bearer(psc_provider.access_token(personas.david.rpps))
    response = search(again, personas.alice)
    assert response.status_code == 401 and JWKS.fetches == 2  # no refetch before the floor has passed


def test_a_token_of_an_unknown_rpps_is_refused(personas, psc_provider):
    response = search(bearer(psc_provider.access_token(UNKNOWN_RPPS)), personas.alice)
    assert response.status_code == 401
    assert "aucun professionnel de santé actif" in response.json()["error"]["message"]


def test_a_tampered_token_is_refused(personas, psc_provider):
    header, payload, signature = psc_provider.access_token(personas.david.rpps).split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert search(bearer(forged), personas.alice).status_code == 401


def test_static_tokens_still_work_next_to_psc(personas, psc_provider):
    assert search(client_for(personas.david), personas.alice).status_code == 200


def test_psc_tokens_are_refused_when_psc_is_not_configured_for_the_api(personas, psc_provider, settings):
    token = psc_provider.access_token(personas.david.rpps)
    settings.CARNET_PSC = {**settings.CARNET_PSC, "api_audience": ""}
    response = search(bearer(token), personas.alice)
    assert response.status_code == 401 and JWKS.fetches == 0


def test_the_capability_statement_names_psc_tokens_only_while_they_are_accepted(psc_provider, settings):
    security = APIClient().get("/fhir/metadata").json()["rest"][0]["security"]["description"]
    assert "Pro Santé Connect" in security
    settings.CARNET_PSC = {**settings.CARNET_PSC, "api_audience": ""}
    security = APIClient().get("/fhir/metadata").json()["rest"][0]["security"]["description"]
    assert "Pro Santé Connect" not in security


def test_the_level_of_a_psc_token_never_outlives_its_request__T1(personas, psc_provider):
    psc = bearer(psc_provider.access_token(personas.david.rpps, acr="eidas3"))
    found = search(psc, personas.alice).json()["handle"]
    psc.post(reverse("api-pro-open", args=[found]), {"attests_care_team": True})
    static = client_for(personas.david)
    handle = search(static, personas.alice).json()["handle"]
    static.post(reverse("api-pro-open", args=[handle]), {"attests_care_team": True})
    opened = TrailEntry.objects.filter(profile=personas.alice, action="open_record").order_by("pk")
    assert [entry.assurance for entry in opened][-2:] == ["eidas3", ""]
