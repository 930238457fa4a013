"""API tokens: created in the portals after the second factor, shown once, stored hashed, expiring,
revocable, listed with their last use; refused alike when wrong, expired or revoked; throttled."""

import hashlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from access_control.models import ApiToken
from access_control.tokens import TokenRefused, do_create_token, do_revoke_token
from patients.portal import STEP_UP_SESSION_KEY
from practitioners.models import Practitioner
from tests.api_fixtures import error_code, token_for
from tests.signin_fixtures import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    """Throttle counters live in the cache, which the test settings share between tests of one process."""
    from django.core.cache import cache

    cache.clear()


SECRET = re.compile(r"carnet_[A-Za-z0-9_-]{43}")


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def profiles(client):
    return client.get(reverse("api-patient-profiles"))


def test_practitioner_creates_a_token_after_the_second_factor_and_sees_it_once(personas, client):
    url = reverse("practitioners:api_tokens")
    client.force_login(personas.david.user)  # password only: the portal wants the second factor first
    assert client.get(url).status_code == 302
    verified_client(client, personas.david.user)
    response = client.post(url, {"name": "Logiciel du cabinet", "scope": "write", "lifetime_days": "90"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secret = SECRET.search(response.content.decode()).group(0)
    token = ApiToken.objects.get(user=personas.david.user)
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()  # stored hashed, never in clear
    assert not ApiToken.objects.filter(digest__contains=secret[7:20]).exists() and secret not in token.prefix + "…"
    assert token.expires_at - token.created_at == timedelta(days=90) and token.scope == "write"
    listing = client.get(url).content.decode()
    assert "Logiciel du cabinet" in listing and token.prefix in listing and secret not in listing
    assert "jamais" in listing


def test_patient_creates_a_token_after_the_step_up(personas, client):
    verified_client(client, personas.alice.user)
    url = reverse("patients:api_tokens")
    assert reverse("patients:step_up") in client.get(url)["Location"]
    session = client.session
    session[STEP_UP_SESSION_KEY] = int(timezone.now().timestamp()) + 300
    session.save()
    response = client.post(url, {"name": "Mon application", "scope": "read", "lifetime_days": "30"})
    secret = SECRET.search(response.content.decode()).group(0)
    assert profiles(bearer(secret)).status_code == 200


def test_the_token_records_its_last_use_and_address(personas):
    secret = token_for(personas.alice.user)
    assert profiles(bearer(secret)).status_code == 200
    token = ApiToken.objects.get(user=personas.alice.user)
    assert token.last_used_at is not None and token.last_used_address == "127.0.0.1"


@pytest.mark.parametrize("header", ["Bearer carnet_not-a-real-token", "Bearer", "Bearer a b", "Bearer ﬁ"])
def test_a_wrong_token_is_401_with_the_bearer_challenge(personas, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = profiles(client)
    assert response.status_code == 401 and error_code(response) == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_no_credentials_is_401_not_authenticated():
    response = profiles(APIClient())
    assert response.status_code == 401 and error_code(response) == "not_authenticated"


def test_an_expired_token_is_refused_like_a_wrong_one(personas):
    secret = token_for(personas.alice.user, days=1)
    with time_machine.travel(timezone.now() + timedelta(days=1, seconds=1)):
        response = profiles(bearer(secret))
    assert response.status_code == 401 and error_code(response) == "invalid_token"


def test_a_revoked_token_is_refused_at_once(personas, client):
    secret = token_for(personas.david.user)
    assert bearer(secret).post(reverse("api-pro-search"), {}, format="json").status_code == 400  # works
    verified_client(client, personas.david.user)
    token = ApiToken.objects.get(user=personas.david.user)
    assert client.post(reverse("practitioners:api_token_revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    response = bearer(secret).post(reverse("api-pro-search"), {}, format="json")
    assert response.status_code == 401 and error_code(response) == "invalid_token"
    assert "révoqué" in client.get(reverse("practitioners:api_tokens")).content.decode()


def test_one_cannot_revoke_someone_elses_token(personas, client):
    token_for(personas.alice.user)
    token = ApiToken.objects.get(user=personas.alice.user)
    verified_client(client, personas.david.user)
    assert client.post(reverse("practitioners:api_token_revoke", args=[token.pk])).status_code == 404
    with pytest.raises(TokenRefused):
        do_revoke_token(token, actor=personas.david.user)


def test_a_suspended_practitioners_token_stops_working__A1(personas):
    secret = token_for(personas.david.user)
    Practitioner.objects.filter(pk=personas.david.pk).update(status=Practitioner.Status.SUSPENDED)
    response = bearer(secret).post(reverse("api-pro-search"), {}, format="json")
    assert response.status_code == 401 and error_code(response) == "invalid_token"


def test_staff_cannot_hold_tokens(personas):
    with pytest.raises(TokenRefused):
        do_create_token(personas.karim, name="Script", scope="write", actor=personas.karim)


def test_lifetime_and_name_are_checked(personas):
    user = personas.alice.user
    with pytest.raises(TokenRefused):
        do_create_token(user, name="Trop long", scope="read", lifetime_days=366, actor=user)
    with pytest.raises(TokenRefused):
        do_create_token(user, name="  ", scope="read", actor=user)
    with pytest.raises(TokenRefused):
        do_create_token(user, name="Autre compte", scope="read", actor=personas.david.user)


def test_requests_are_throttled_per_token(personas, settings):
    settings.CARNET_API_TOKEN_RATE = "3/min"
    client = bearer(token_for(personas.alice.user))
    assert [profiles(client).status_code for _ in range(3)] == [200, 200, 200]
    response = profiles(client)
    assert response.status_code == 429 and error_code(response) == "throttled"
    assert int(response["Retry-After"]) > 0
    assert profiles(bearer(token_for(personas.alice.user, name="Autre"))).status_code == 200  # another token


def test_anonymous_requests_are_throttled_per_address(personas, settings):
    """Refused tokens count per address; valid tokens only per token (tests/test_signin_throttling.py)."""
    settings.CARNET_API_ADDRESS_RATE = "2/min"
    assert profiles(bearer("carnet_" + "B" * 43)).status_code == 401
    assert profiles(bearer("carnet_" + "C" * 43)).status_code == 401
    forged = bearer("carnet_" + "D" * 43)
    response = forged.get(reverse("api-patient-profiles"), HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert response.status_code == 429 and error_code(response) == "throttled"  # a forged header changes nothing
    assert int(response["Retry-After"]) > 0
    assert profiles(bearer(token_for(personas.denise.user))).status_code == 200


def test_the_compiled_token_query_gives_what_the_orm_reference_gives(personas, django_assert_num_queries):
    """verify_token runs ``token_with_account`` compiled once (plumbing.sql.CompiledQuery): same rows, same objects."""
    from access_control.tokens import digest_of, token_with_account, verify_token

    secrets = [token_for(personas.claire.user), token_for(personas.alice.user, scope="read")]
    for secret in secrets:
        verify_token(secret)  # records the first use: no write on the next call
        reference = token_with_account(digest_of(secret)).get()
        with django_assert_num_queries(1):  # user, practitioner, profession and profile come with the token
            token = verify_token(secret)
            assert token is not None
            user = token.user
            related = (getattr(user, "practitioner", None), getattr(user, "profile", None))
            profession = related[0].profession if related[0] is not None else None
        assert [getattr(token, f.attname) for f in ApiToken._meta.concrete_fields] == [
            getattr(reference, f.attname) for f in ApiToken._meta.concrete_fields
        ]
        expected = (getattr(reference.user, "practitioner", None), getattr(reference.user, "profile", None))
        assert related == expected and user == reference.user
        assert profession == (expected[0].profession if expected[0] is not None else None)
    assert verify_token("carnet_" + "x" * 43) is None
