"""Sign-in throttling that survives proxies and crowds (issue 13, item 4): the client address behind trusted
proxies only, per-account and per-address counters with their own limits, a success clearing the account,
the staff desk lifting a lock-out (traced, T1), ``Retry-After`` on every 429, the identity look-up's address
cap (A11), and the API's allowances (per token or account; anonymous calls per address)."""

from datetime import date

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from access_control.api import LookupThrottled, find_profile
from access_control.models import TrailEntry
from access_control.rules import Action, Reason
from accounts.auth import client_address
from plumbing.throttling import account_name, account_state
from records.models import User
from tests.api_fixtures import error_code, token_for
from tests.signin_fixtures import verified_client
from tests.test_signin import (
    BAD_PATIENT_CREDENTIALS,
    PASSWORD,
    THROTTLED,
    make_patient,
    make_practitioner,
    patient_password,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice():
    return make_patient("Alice Marie", "MARTIN", "alice.martin@example.fr", "262087503203977")


@pytest.fixture
def bruno():
    return make_patient("Bruno", "PETIT", "bruno.petit@example.fr", "160017512345678", sex="M")


def _request(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


# --- The client address -----------------------------------------------------------------------------------


def test_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.CARNET_TRUSTED_PROXIES = []
    assert client_address(_request("198.51.100.4", "203.0.113.9")) == "198.51.100.4"


def test_forwarded_for_is_read_from_the_right_skipping_trusted_hops(settings):
    settings.CARNET_TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.1"]
    # The client forged the leftmost entry; the proxies appended what they saw.
    request = _request("10.0.0.5", "1.2.3.4, 203.0.113.9, 192.0.2.1")
    assert client_address(request) == "203.0.113.9"
    assert client_address(_request("10.0.0.5", "2001:db8::7")) == "2001:db8::7"
    assert client_address(_request("10.0.0.5")) == "10.0.0.5"  # no header: the proxy itself
    assert client_address(_request("10.0.0.5", "nonsense")) == "10.0.0.5"


def test_forwarded_for_from_an_untrusted_peer_is_ignored(settings):
    settings.CARNET_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_address(_request("198.51.100.4", "203.0.113.9")) == "198.51.100.4"


def test_clients_behind_the_proxy_are_throttled_apart(alice, bruno, settings):
    """Behind the reverse proxy every request has its REMOTE_ADDR: a lock-out must not spread to everyone."""
    settings.CARNET_TRUSTED_PROXIES = ["10.0.0.1"]
    settings.CARNET_LOGIN_ADDRESS_ATTEMPTS = 3
    via_proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for n in range(3):
        patient_password(Client(), f"x{n}@example.fr", HTTP_X_FORWARDED_FOR="203.0.113.66", **via_proxy)
    attacker = patient_password(Client(), "alice.martin@example.fr", HTTP_X_FORWARDED_FOR="203.0.113.66", **via_proxy)
    assert attacker.status_code == 429
    other = patient_password(Client(), "alice.martin@example.fr", HTTP_X_FORWARDED_FOR="198.51.100.20", **via_proxy)
    assert other.status_code == 302


# --- Counters -------------------------------------------------------------------------------------------


def test_a_crowd_behind_one_address_is_not_locked_out_by_a_few_failures(alice, bruno, settings):
    """A hospital behind one NAT: other people's typos do not lock Alice out (per-address limit much higher)."""
    settings.CARNET_LOGIN_ATTEMPTS = 3
    settings.CARNET_LOGIN_ADDRESS_ATTEMPTS = 50
    hospital = {"REMOTE_ADDR": "192.0.2.50"}
    for _ in range(3):
        assert BAD_PATIENT_CREDENTIALS in patient_password(Client(), "bruno.petit@example.fr", "faux", **hospital).text
    assert THROTTLED in patient_password(Client(), "bruno.petit@example.fr", **hospital).text  # Bruno: locked
    for n in range(10):
        patient_password(Client(), f"inconnu{n}@example.fr", **hospital)
    assert patient_password(Client(), "alice.martin@example.fr", **hospital).status_code == 302


def test_a_completed_sign_in_clears_the_account_failures(alice, settings):
    settings.CARNET_LOGIN_ATTEMPTS = 3
    for _ in range(2):
        patient_password(Client(), "alice.martin@example.fr", "faux")
    account = account_name(user_id=alice.pk, door="", identifier="")
    assert account_state(account)[0] == 2
    client = Client()
    assert patient_password(client, "alice.martin@example.fr").status_code == 302
    from django.core import mail

    code = __import__("re").search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    assert client.post(reverse("patients:verify"), {"code": code}).status_code == 302
    assert account_state(account) == (0, 0)
    for _ in range(2):  # two new failures do not lock: the count started again
        patient_password(Client(), "alice.martin@example.fr", "faux")
    assert patient_password(Client(), "alice.martin@example.fr").status_code == 302


def test_throttled_second_factor_page_answers_429_with_retry_after(alice, settings):
    settings.CARNET_LOGIN_ATTEMPTS = 2
    client = Client()
    patient_password(client, "alice.martin@example.fr")
    for _ in range(2):  # backup-code shaped: no device takes them, django-otp's own delay stays out of the way
        client.post(reverse("patients:verify"), {"code": "zzzz-zzzz"})
    response = client.post(reverse("patients:verify"), {"code": "zzzz-zzzz"})
    assert response.status_code == 429 and THROTTLED in response.text
    assert 0 < int(response["Retry-After"]) <= settings.CARNET_LOGIN_WINDOW_SECONDS


# --- The staff desk ---------------------------------------------------------------------------------------


def _staff(username: str, group: str | None = None, *, superuser: bool = False) -> User:
    from django.contrib.auth.models import Group

    user = User.objects.create_user(
        username=username, password=PASSWORD, kind=User.Kind.STAFF, is_staff=True, is_superuser=superuser
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def test_staff_see_and_lift_a_lock_out_traced(alice, settings):
    settings.CARNET_LOGIN_ATTEMPTS = 2
    for _ in range(2):
        patient_password(Client(), "alice.martin@example.fr", "faux")
    assert patient_password(Client(), "alice.martin@example.fr").status_code == 429
    agent = verified_client(Client(), _staff("agent.desk", "Agents"))
    page = agent.get(reverse("admin:signin_desk"), {"q": "alice.martin@example.fr"})
    assert page.status_code == 200
    assert "Lever le blocage" in page.text and "encore 15 minutes" in page.text
    assert "Réinitialiser le second facteur" not in page.text  # an agent may not, and Alice is a patient
    response = agent.post(reverse("admin:signin_desk"), {"user": alice.pk, "action": "lift", "q": "alice"})
    assert response.status_code == 302
    assert patient_password(Client(), "alice.martin@example.fr").status_code == 302
    entry = TrailEntry.objects.get(action=Action.LOCKOUT_LIFTED)
    assert entry.profile_id == alice.profile.pk and entry.actor_user_id is not None
    assert entry.actor_kind == TrailEntry.ActorKind.STAFF and entry.reason == Reason.STAFF_DESK


def test_the_sign_in_desk_needs_a_permission(alice):
    nobody = verified_client(Client(), _staff("sans.groupe"))
    assert nobody.get(reverse("admin:signin_desk")).status_code in (302, 403)
    response = nobody.post(reverse("admin:signin_desk"), {"user": alice.pk, "action": "lift"})
    assert response.status_code in (302, 403)
    assert not TrailEntry.objects.filter(action=Action.LOCKOUT_LIFTED).exists()


# --- Identity look-ups (A11) ------------------------------------------------------------------------------


def test_lookup_failures_are_capped_per_address_across_practitioners__A11(alice, settings):
    settings.CARNET_LOOKUP_ATTEMPTS = 50
    settings.CARNET_LOOKUP_ADDRESS_ATTEMPTS = 3
    doctors = [make_practitioner(f"P{n}", "Test", f"1000000000{n}", f"p{n}@example.fr") for n in range(4)]
    for n in range(3):
        assert (
            find_profile(doctors[n], nir="160017599999999", birth_date=date(1960, 1, 1), client_address="192.0.2.9")
            is None
        )
    with pytest.raises(LookupThrottled) as refused:
        find_profile(doctors[3], nir=alice.profile.nir, birth_date=alice.profile.birth_date, client_address="192.0.2.9")
    assert 0 < refused.value.retry_after <= 3600
    found = find_profile(
        doctors[3], nir=alice.profile.nir, birth_date=alice.profile.birth_date, client_address="192.0.2.10"
    )
    assert found is None or found.pk == alice.profile.pk  # another address is not capped
    assert TrailEntry.objects.filter(reason=Reason.LOOKUP_THROTTLED).count() == 1


def test_api_lookup_throttle_carries_retry_after__A11(personas, settings):
    settings.CARNET_LOOKUP_ATTEMPTS = 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(personas.claire.user)}")
    body = {"nir": personas.alice.nir, "birth_date": "1901-01-01"}  # the birth date differs
    assert client.post(reverse("api-pro-search"), body, format="json").status_code == 404
    response = client.post(reverse("api-pro-search"), body, format="json")
    assert response.status_code == 429 and error_code(response) == "lookup_throttled"
    assert 0 < int(response["Retry-After"]) <= 3600


# --- The API's own limits -------------------------------------------------------------------------------


def _profiles(client, **extra):
    return client.get(reverse("api-patient-profiles"), **extra)


def test_authenticated_api_calls_are_not_limited_per_address(personas, settings):
    settings.CARNET_API_ADDRESS_RATE = "2/min"
    settings.CARNET_API_TOKEN_RATE = "100/min"
    for persona in (personas.alice, personas.etienne, personas.denise):
        client = APIClient(REMOTE_ADDR="192.0.2.80")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(persona.user)}")
        assert [_profiles(client).status_code for _ in range(2)] == [200, 200]


def test_anonymous_api_calls_are_limited_per_address_with_retry_after(personas, settings):
    settings.CARNET_API_ADDRESS_RATE = "2/min"
    guesser = APIClient(REMOTE_ADDR="192.0.2.81")
    guesser.credentials(HTTP_AUTHORIZATION="Bearer carnet_" + "A" * 43)
    assert [_profiles(guesser).status_code for _ in range(2)] == [401, 401]
    response = _profiles(guesser, HTTP_X_FORWARDED_FOR="203.0.113.7")  # a forged header changes nothing
    assert response.status_code == 429 and error_code(response) == "throttled"
    assert int(response["Retry-After"]) > 0
    other = APIClient(REMOTE_ADDR="192.0.2.82")
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(personas.alice.user)}")
    assert _profiles(other).status_code == 200
