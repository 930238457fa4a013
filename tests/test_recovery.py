"""Forgotten passwords and lost second factors (issue 13, item 3; accounts.recovery): by e-mailed code, then the
second factor, then a new password, at both doors; by post for a patient who lost the second factor; by the
staff desk for a practitioner. Throttled, single-use, no account oracle, traced (T1)."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from access_control.models import TrailEntry
from access_control.rules import Action, Reason
from access_control.trail import NATIONAL_CHAIN
from notifications.content import build_message
from notifications.models import Notice
from records import lifecycle
from records.models import Profile, User
from tests.signin_fixtures import verified_client
from tests.test_signin import PASSWORD, T0, app_code, make_patient, make_practitioner, patient_password

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Nouveau-cheval-agrafe-42"
SENT = "Si un compte correspond à cet identifiant"


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def alice():
    """E-mailed codes only (no app); a postal address."""
    user = make_patient("Alice Marie", "MARTIN", "alice.martin@example.fr", "262087503203977")
    Profile.objects.filter(user=user).update(address_street="3 rue des Lilas", postal_code="69003", city="Lyon")
    return user


@pytest.fixture
def etienne():
    user = make_patient("Étienne Paul", "ROUX", "etienne.roux@example.fr", "137047624348415", sex="M")
    TOTPDevice.objects.create(user=user, name="Téléphone", confirmed=True)
    backup = StaticDevice.objects.create(user=user, name="Codes de secours", confirmed=True)
    StaticToken.objects.create(device=backup, token="wxyz2345")
    return user


@pytest.fixture
def david():
    practitioner = make_practitioner("David", "Lambert", "10100534436", "david.lambert@example.fr")
    TOTPDevice.objects.create(user=practitioner.user, name="Téléphone", confirmed=True)
    backup = StaticDevice.objects.create(user=practitioner.user, name="Codes de secours", confirmed=True)
    StaticToken.objects.create(device=backup, token="abcd2345")
    return practitioner


def _code() -> str:
    return re.search(r"\b(\d{8})\b", mail.outbox[-1].body).group(1)


def _ask(client, door: str, identifier: str):
    return client.post(reverse(f"{door}:recover"), {"identifier": identifier})


def _signs_in(email: str, password: str) -> bool:
    return patient_password(Client(), email, password).status_code == 302


# --- Patients, by e-mail -----------------------------------------------------------------------------------


def test_sign_in_pages_link_to_recovery(client):
    assert reverse("patients:recover") in client.get(reverse("patients:login")).text
    assert reverse("practitioners:recover") in client.get(reverse("practitioners:login")).text
    assert reverse("patients:recover") == "/connexion/oubli/"
    assert reverse("practitioners:recover") == "/pro/connexion/oubli/"


def test_patient_resets_a_forgotten_password_by_email(client, alice, clock):
    other = verified_client(Client(), alice)
    response = _ask(client, "patients", "Alice.Martin@example.fr")
    assert response.status_code == 302 and response.url == reverse("patients:recover_code")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice.martin@example.fr"]
    # Like a sign-in code e-mail: the code only, no name, no NIR, no health information.
    for secret in ("Alice", "MARTIN", "262087503203977", "Lyon"):
        assert secret not in message.body and secret not in message.subject
    # No app: the e-mailed code was the second factor, straight to the new password.
    response = client.post(reverse("patients:recover_code"), {"code": _code()})
    assert response.url == reverse("patients:recover_password")
    weak = client.post(reverse("patients:recover_password"), {"password1": "12345678", "password2": "12345678"})
    assert weak.status_code == 200 and "trop court" in weak.text  # Django's validators, in French
    response = client.post(reverse("patients:recover_password"), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302 and response.url == reverse("patients:login")
    assert _signs_in("alice.martin@example.fr", NEW_PASSWORD)
    assert not _signs_in("alice.martin@example.fr", PASSWORD)
    assert other.get(reverse("patients:dashboard")).status_code == 302  # every other session ended
    entry = TrailEntry.objects.get(action=Action.PASSWORD_RESET)
    assert entry.profile_id == alice.profile.pk and entry.actor_user_id == alice.pk


def test_patient_recovery_email_in_english_for_an_english_speaker(client, alice):
    User.objects.filter(pk=alice.pk).update(preferred_language="en")
    _ask(client, "patients", "alice.martin@example.fr")
    assert "Your code to choose a new Carnet password" in mail.outbox[0].body


def test_unknown_account_gets_the_same_page_and_no_email(client, alice):
    known = _ask(Client(), "patients", "alice.martin@example.fr")
    unknown = _ask(client, "patients", "personne@example.fr")
    assert known.status_code == unknown.status_code == 302 and known.url == unknown.url
    assert len(mail.outbox) == 1  # only Alice's
    page = client.get(unknown.url)
    assert SENT in page.text
    response = client.post(reverse("patients:recover_code"), {"code": "12345678"})
    assert response.status_code == 200 and "Code incorrect ou expiré" in response.text


def test_recovery_code_is_single_use(client, alice):
    _ask(client, "patients", "alice.martin@example.fr")
    code = _code()
    client.post(reverse("patients:recover_code"), {"code": code})
    replay = Client()
    _ask(replay, "patients", "personne@example.fr")  # a session at the code step
    replay.session.save()
    session = replay.session
    session["carnet_recovery"] = {**session["carnet_recovery"], "user": alice.pk}
    session.save()
    response = replay.post(reverse("patients:recover_code"), {"code": code})
    assert response.status_code == 200 and "Code incorrect ou expiré" in response.text


def test_a_new_request_voids_the_previous_code(client, alice, clock):
    _ask(client, "patients", "alice.martin@example.fr")
    first = _code()
    clock.shift(5)
    _ask(client, "patients", "alice.martin@example.fr")
    second = _code()
    assert first != second
    assert "Code incorrect" in client.post(reverse("patients:recover_code"), {"code": first}).text
    assert client.post(reverse("patients:recover_code"), {"code": second}).status_code == 302


def test_an_expired_code_is_refused(client, alice, clock, settings):
    _ask(client, "patients", "alice.martin@example.fr")
    clock.shift(settings.CARNET_RECOVERY_SECONDS + 1)
    response = client.post(reverse("patients:recover_code"), {"code": _code()})
    assert response.status_code == 302 and response.url == reverse("patients:recover")  # the step itself lapsed


def test_recovery_requests_are_throttled_per_account_and_per_address(alice, settings):
    settings.CARNET_LOGIN_ATTEMPTS = 2
    settings.CARNET_LOGIN_ADDRESS_ATTEMPTS = 4
    for n in range(2):
        assert _ask(Client(REMOTE_ADDR=f"10.9.0.{n}"), "patients", "alice.martin@example.fr").status_code == 302
    refused = _ask(Client(REMOTE_ADDR="10.9.0.9"), "patients", "alice.martin@example.fr")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert len(mail.outbox) == 2  # no mailbox flooding
    unknown = _ask(Client(REMOTE_ADDR="10.9.1.9"), "patients", "personne@example.fr")
    _ask(Client(REMOTE_ADDR="10.9.1.9"), "patients", "personne@example.fr")
    assert _ask(Client(REMOTE_ADDR="10.9.1.9"), "patients", "personne@example.fr").status_code == 429  # alike
    assert unknown.status_code == 302
    attacker = Client(REMOTE_ADDR="10.9.2.1")
    for n in range(4):
        _ask(attacker, "patients", f"x{n}@example.fr")
    assert _ask(attacker, "patients", "y@example.fr").status_code == 429  # per address, across accounts
    assert _signs_in("alice.martin@example.fr", PASSWORD)  # recovery counters do not lock the sign-in


def test_wrong_recovery_codes_are_throttled(client, alice, settings):
    settings.CARNET_LOGIN_ATTEMPTS = 3
    _ask(client, "patients", "alice.martin@example.fr")
    code = _code()
    for _ in range(3):
        client.post(reverse("patients:recover_code"), {"code": "00000000"})
    response = client.post(reverse("patients:recover_code"), {"code": code})
    assert response.status_code == 429


def test_patient_with_an_app_passes_the_second_factor_with_a_backup_code(client, etienne, clock):
    _ask(client, "patients", "etienne.roux@example.fr")
    response = client.post(reverse("patients:recover_code"), {"code": _code()})
    assert response.url == reverse("patients:recover_second_factor")
    assert client.get(reverse("patients:recover_password")).status_code == 302  # not before the second factor
    page = client.get(reverse("patients:recover_second_factor"))
    assert reverse("patients:recover_letter") in page.text
    assert "Code incorrect" in client.post(reverse("patients:recover_second_factor"), {"code": "zzzz-zzzz"}).text
    clock.shift(10)  # past django-otp's delay after a wrong code
    response = client.post(reverse("patients:recover_second_factor"), {"code": "WXYZ-2345"})
    assert response.url == reverse("patients:recover_password")
    client.post(reverse("patients:recover_password"), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert _signs_in("etienne.roux@example.fr", NEW_PASSWORD)


# --- Patients, by post -------------------------------------------------------------------------------------


def test_patient_who_lost_the_second_factor_gets_a_code_by_post(client, alice, etienne, clock):
    Profile.objects.filter(user=etienne).update(address_street="8 quai Rambaud", postal_code="69002", city="Lyon")
    profile = etienne.profile
    response = client.post(
        reverse("patients:recover_letter"), {"nir": profile.nir, "birth_date": profile.birth_date.isoformat()}
    )
    assert response.status_code == 302 and response.url == reverse("patients:recover_with_letter")
    unknown = Client().post(reverse("patients:recover_letter"), {"nir": profile.nir, "birth_date": "1990-01-01"})
    assert unknown.status_code == 302 and unknown.url == response.url  # the same answer
    notice = Notice.objects.get(profile=profile)
    assert notice.kind == Notice.Kind.PRE_OPENING and notice.channel == Notice.Channel.LETTER
    entry = TrailEntry.objects.get(action=Action.RECOVERY_LETTER)
    assert entry.profile_id == profile.pk
    message = build_message(notice)
    code = message.code
    assert "/connexion/oubli/courrier/code/" in " ".join(message.paragraphs)
    assert "opposer" not in " ".join(message.paragraphs + message.after)
    # A second request the same day sends no second letter.
    Client().post(
        reverse("patients:recover_letter"), {"nir": profile.nir, "birth_date": profile.birth_date.isoformat()}
    )
    assert Notice.objects.filter(profile=profile).count() == 1

    form = {
        "nir": profile.nir,
        "birth_date": profile.birth_date.isoformat(),
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    wrong = client.post(reverse("patients:recover_with_letter"), {**form, "provisional_code": "ABCDEFGHJK"})
    assert wrong.status_code == 200 and "ne permettent pas de retrouver votre espace" in wrong.text
    response = client.post(reverse("patients:recover_with_letter"), {**form, "provisional_code": code})
    assert response.status_code == 302 and response.url == reverse("patients:login")
    assert (
        not TOTPDevice.objects.filter(user=etienne).exists() and not StaticDevice.objects.filter(user=etienne).exists()
    )
    reset = TrailEntry.objects.get(action=Action.SECOND_FACTOR_RESET)
    assert reset.profile_id == profile.pk and reset.reason == Reason.PROVISIONAL_CODE
    again = Client().post(reverse("patients:recover_with_letter"), {**form, "provisional_code": code})
    assert "ne permettent pas" in again.text  # single use
    # Signs in with the new password and an e-mailed code.
    signer = Client()
    assert patient_password(signer, "etienne.roux@example.fr", NEW_PASSWORD).status_code == 302
    emailed = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    assert signer.post(reverse("patients:verify"), {"code": emailed}).status_code == 302


def test_an_expired_postal_code_is_refused(client, etienne):
    profile = etienne.profile
    code = lifecycle.generate_provisional_code()
    Profile.objects.filter(pk=profile.pk).update(
        provisional_code_hash=lifecycle.hash_provisional_code(code),
        provisional_code_expires_at=T0 - timedelta(days=1),
    )
    form = {"nir": profile.nir, "birth_date": profile.birth_date.isoformat(), "provisional_code": code}
    response = client.post(
        reverse("patients:recover_with_letter"), {**form, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert "ne permettent pas" in response.text
    assert TOTPDevice.objects.filter(user=etienne).exists()


# --- Practitioners -----------------------------------------------------------------------------------------


def test_practitioner_resets_a_forgotten_password(client, david, clock):
    _ask(client, "practitioners", "10100534436")
    assert len(mail.outbox) == 1 and "David" not in mail.outbox[0].body
    response = client.post(reverse("practitioners:recover_code"), {"code": _code()})
    assert response.url == reverse("practitioners:recover_second_factor")
    device = TOTPDevice.objects.get(user=david.user)
    response = client.post(reverse("practitioners:recover_second_factor"), {"code": app_code(device)})
    assert response.url == reverse("practitioners:recover_password")
    client.post(reverse("practitioners:recover_password"), {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    response = Client().post(reverse("practitioners:login"), {"identifier": "10100534436", "password": NEW_PASSWORD})
    assert response.status_code == 302
    entry = TrailEntry.objects.get(action=Action.PASSWORD_RESET)
    assert entry.profile_id == NATIONAL_CHAIN and entry.actor_practitioner_id == david.pk


def test_practitioner_unknown_rpps_looks_the_same(client, david):
    known = _ask(Client(), "practitioners", "10100534436")
    unknown = _ask(client, "practitioners", "10000000000")
    assert known.url == unknown.url and len(mail.outbox) == 1


def test_staff_desk_resets_a_practitioners_second_factor(david):
    supervisor = User.objects.create_user(username="sup.desk", password=PASSWORD, kind=User.Kind.STAFF, is_staff=True)
    supervisor.groups.add(Group.objects.get(name="Superviseurs"))
    desk = verified_client(Client(), supervisor)
    old_session = verified_client(Client(), david.user)
    page = desk.get(reverse("admin:signin_desk"), {"q": "10100534436"})
    assert "Réinitialiser le second facteur" in page.text
    response = desk.post(reverse("admin:signin_desk"), {"user": david.user.pk, "action": "reset", "q": "10100534436"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=david.user).exists()
    assert not StaticDevice.objects.filter(user=david.user).exists()
    assert old_session.get(reverse("practitioners:home")).status_code == 302
    entry = TrailEntry.objects.get(action=Action.SECOND_FACTOR_RESET)
    assert entry.actor_user_id == supervisor.pk and entry.detail == f"user {david.user.pk}"
    # The next sign-in enrols a new app.
    response = Client().post(reverse("practitioners:login"), {"identifier": "10100534436", "password": PASSWORD})
    assert response.url == reverse("practitioners:enrol")


def test_agents_may_not_reset_a_second_factor(david):
    agent = User.objects.create_user(username="agent.desk", password=PASSWORD, kind=User.Kind.STAFF, is_staff=True)
    agent.groups.add(Group.objects.get(name="Agents"))
    desk = verified_client(Client(), agent)
    response = desk.post(reverse("admin:signin_desk"), {"user": david.user.pk, "action": "reset"})
    assert response.status_code == 403
    assert TOTPDevice.objects.filter(user=david.user).exists()


def test_recovery_pages_render_in_english(client):
    response = client.get(reverse("patients:recover"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and "Forgotten password" in response.text
    assert "Forgotten password?" in client.get(reverse("practitioners:login"), HTTP_ACCEPT_LANGUAGE="en").text
