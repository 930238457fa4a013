"""Sign-in at the three doors: patients (e-mail code or TOTP), practitioners (mandatory TOTP, backup codes),
staff (OTP admin); throttling, no account oracle, sign-out and sign-out everywhere."""

import logging
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.second_factors import do_issue_backup_codes, totp_secret
from practitioners.models import Practitioner, Profession
from records.models import Profile, User
from tests.signin_fixtures import verified_client

pytestmark = pytest.mark.django_db

PASSWORD = "Cheval-agrafe-batterie-9"
T0 = datetime(2025, 3, 3, 9, 0, 0, tzinfo=UTC)  # on a TOTP step boundary

BAD_PATIENT_CREDENTIALS = "Adresse électronique ou mot de passe incorrect."
BAD_PRACTITIONER_CREDENTIALS = "Identifiant ou mot de passe incorrect."
BAD_CODE = "Code incorrect ou expiré."
THROTTLED = "Trop de tentatives"


class CountingHasher(MD5PasswordHasher):
    """MD5 (fast tests) that counts the hashing work; checking a password hashes it once too (``verify``)."""

    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def make_patient(first_names, birth_name, email, nir, *, birth_date=date(1962, 8, 7), sex="F"):
    user = User.objects.create_user(username=f"patient-{nir}", email=email, password=PASSWORD, kind=User.Kind.PATIENT)
    Profile.objects.create(
        nir=nir,
        birth_name=birth_name,
        first_names=first_names,
        birth_date=birth_date,
        sex=sex,
        state=Profile.State.ACTIVE,
        email=email,
        email_verified=True,
        user=user,
    )
    return user


def make_practitioner(first_name, last_name, rpps, email, *, status=Practitioner.Status.ACTIVE):
    profession, _ = Profession.objects.get_or_create(
        code="10", defaults={"label_fr": "Médecin", "label_en": "Physician", "is_doctor": True}
    )
    user = User.objects.create_user(
        username=f"rpps-{rpps}", email=email, password=PASSWORD, kind=User.Kind.PRACTITIONER
    )
    return Practitioner.objects.create(
        rpps=rpps,
        title="Dr",
        first_name=first_name,
        last_name=last_name,
        profession=profession,
        status=status,
        user=user,
    )


@pytest.fixture
def alice():
    """Activated, no authenticator app: second factor by e-mailed code."""
    return make_patient("Alice Marie", "MARTIN", "alice.martin@example.fr", "262087503203977")


@pytest.fixture
def etienne():
    """Activated, with a confirmed authenticator app."""
    user = make_patient("Étienne Paul", "ROUX", "etienne.roux@example.fr", "137047624348415", sex="M")
    TOTPDevice.objects.create(user=user, name="Téléphone", confirmed=True)
    return user


@pytest.fixture
def claire():
    """Dr Claire Dubois, first sign-in ahead (no authenticator app yet)."""
    return make_practitioner("Claire", "Dubois", "10005173140", "claire.dubois@example.fr")


@pytest.fixture
def david():
    """Dr David Lambert, authenticator app and backup codes already set up."""
    practitioner = make_practitioner("David", "Lambert", "10100534436", "david.lambert@example.fr")
    TOTPDevice.objects.create(user=practitioner.user, name="Téléphone", confirmed=True)
    return practitioner


@pytest.fixture
def karim():
    return User.objects.create_user(
        username="karim.benali",
        email="karim.benali@example.fr",
        password=PASSWORD,
        kind=User.Kind.STAFF,
        is_staff=True,
        is_superuser=True,
    )


def app_code(device) -> str:
    device.refresh_from_db()
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def emailed_code() -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


def patient_password(client, email, password=PASSWORD, **extra):
    return client.post(reverse("patients:login"), {"email": email, "password": password}, **extra)


def practitioner_password(client, identifier, password=PASSWORD, **extra):
    return client.post(reverse("practitioners:login"), {"identifier": identifier, "password": password}, **extra)


def sign_in_etienne(client, etienne):
    assert patient_password(client, "etienne.roux@example.fr").status_code == 302
    device = TOTPDevice.objects.get(user=etienne)
    response = client.post(reverse("patients:verify"), {"code": app_code(device)})
    assert response.status_code == 302 and response.url == reverse("patients:dashboard")


# --- Pages --------------------------------------------------------------------------------------------


def test_sign_in_pages_render_in_french(client):
    response = client.get(reverse("patients:login"))
    assert response.status_code == 200
    assert "Connexion à votre espace santé" in response.text
    assert "Adresse électronique" in response.text and "Mot de passe" in response.text
    assert 'name="csrfmiddlewaretoken"' in response.text
    response = client.get(reverse("practitioners:login"))
    assert response.status_code == 200
    assert "Connexion des professionnels de santé" in response.text
    assert "Numéro RPPS ou adresse électronique" in response.text
    response = client.get(reverse("patients:home"))
    assert response.status_code == 200
    assert reverse("patients:login") in response.text and reverse("practitioners:login") in response.text


def test_second_factor_pages_need_the_password_step_first(client):
    for name in ("patients:verify", "practitioners:verify", "practitioners:enrol"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response.url.endswith("/connexion/")


def test_login_forms_are_csrf_protected(alice):
    strict = Client(enforce_csrf_checks=True)
    assert patient_password(strict, "alice.martin@example.fr").status_code == 403
    assert practitioner_password(strict, "10005173140").status_code == 403
    assert len(mail.outbox) == 0


# --- Patients -----------------------------------------------------------------------------------------


def test_patient_signs_in_with_a_code_sent_by_email(client, alice, clock, caplog):
    caplog.set_level(logging.DEBUG)
    response = patient_password(client, "Alice.Martin@Example.fr")  # the address is case-insensitive
    assert response.status_code == 302 and response.url == reverse("patients:verify")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice.martin@example.fr"]
    assert message.subject == "Votre code de connexion à Carnet"
    assert "valable 10 minutes" in message.body
    assert "MARTIN" not in message.body and "Alice" not in message.body  # a code, nothing about the person
    code = emailed_code()

    # Password alone is not a sign-in: the patient pages stay closed.
    response = client.get(reverse("patients:dashboard"))
    assert response.status_code == 302 and response.url.startswith(reverse("patients:login"))

    response = client.get(reverse("patients:verify"))
    assert response.status_code == 200
    assert "que nous vous avons envoyé par courriel" in response.text

    response = client.post(reverse("patients:verify"), {"code": other_code(code)})
    assert response.status_code == 200
    assert BAD_CODE in response.text

    clock.shift(2)  # django-otp's own throttle wants a second after a wrong code
    response = client.post(reverse("patients:verify"), {"code": code})
    assert response.status_code == 302 and response.url == reverse("patients:dashboard")

    response = client.get(reverse("patients:dashboard"))
    assert response.status_code == 200
    assert "Bonjour Alice" in response.text
    assert "Activé" in response.text
    assert "no-store" in response["Cache-Control"]

    # No personal data in the logs: neither the address nor the code nor the password.
    assert "alice.martin" not in caplog.text.lower()
    assert code not in caplog.text and PASSWORD not in caplog.text


def test_expired_email_code_is_refused(client, alice, clock):
    patient_password(client, "alice.martin@example.fr")
    code = emailed_code()
    clock.shift(timedelta(minutes=10, seconds=1))
    response = client.post(reverse("patients:verify"), {"code": code})
    assert response.status_code == 200
    assert BAD_CODE in response.text
    assert client.get(reverse("patients:dashboard")).status_code == 302


def test_patient_can_ask_for_a_new_code_once_a_minute(client, alice, clock):
    patient_password(client, "alice.martin@example.fr")
    first = emailed_code()
    client.post(reverse("patients:verify"), {"resend": "1"})
    assert len(mail.outbox) == 1  # cooldown: the first code is still the one to use
    clock.shift(61)
    response = client.post(reverse("patients:verify"), {"resend": "1"}, follow=True)
    assert "Un code de vérification vous a été envoyé par courriel." in response.text
    assert len(mail.outbox) == 2
    second = emailed_code()
    if second != first:
        clock.shift(2)
        assert BAD_CODE in client.post(reverse("patients:verify"), {"code": first}).text
        clock.shift(2)
    assert client.post(reverse("patients:verify"), {"code": second}).status_code == 302


def test_patient_with_an_authenticator_app_signs_in_with_it(client, etienne, clock):
    response = patient_password(client, "etienne.roux@example.fr")
    assert response.status_code == 302 and response.url == reverse("patients:verify")
    assert mail.outbox == []  # no e-mailed code when an app is configured
    response = client.get(reverse("patients:verify"))
    assert "affiché par votre application d'authentification" in response.text
    device = TOTPDevice.objects.get(user=etienne)
    response = client.post(reverse("patients:verify"), {"code": app_code(device)})
    assert response.status_code == 302
    response = client.get(reverse("patients:dashboard"))
    assert response.status_code == 200 and "Bonjour Étienne" in response.text


def test_replayed_totp_code_is_refused(client, etienne, clock):
    device = TOTPDevice.objects.get(user=etienne)
    code = app_code(device)
    sign_in_etienne(client, etienne)
    client.post(reverse("patients:logout"))

    other = Client()
    patient_password(other, "etienne.roux@example.fr")
    response = other.post(reverse("patients:verify"), {"code": code})  # same time step: already used
    assert response.status_code == 200 and BAD_CODE in response.text
    assert other.get(reverse("patients:dashboard")).status_code == 302

    clock.shift(32)  # the next time step gives a fresh code (and the device throttle has passed)
    response = other.post(reverse("patients:verify"), {"code": app_code(device)})
    assert response.status_code == 302 and response.url == reverse("patients:dashboard")


def test_safe_next_url_is_kept_and_foreign_one_ignored(client, etienne, clock):
    url = reverse("patients:login")
    client.post(f"{url}?next=https://evil.example/", {"email": "etienne.roux@example.fr", "password": PASSWORD})
    device = TOTPDevice.objects.get(user=etienne)
    response = client.post(reverse("patients:verify"), {"code": app_code(device)})
    assert response.url == reverse("patients:dashboard")


def test_patient_door_ignores_non_patient_accounts(client, claire):
    response = patient_password(client, "claire.dubois@example.fr")
    assert response.status_code == 200 and BAD_PATIENT_CREDENTIALS in response.text


# --- Practitioners ------------------------------------------------------------------------------------


def test_practitioner_first_sign_in_enrols_an_authenticator_then_uses_it(client, claire, clock):
    user = claire.user
    response = practitioner_password(client, "10005173140")
    assert response.status_code == 302 and response.url == reverse("practitioners:enrol")
    assert client.get(reverse("practitioners:verify")).url == reverse("practitioners:enrol")

    response = client.get(reverse("practitioners:enrol"))
    assert response.status_code == 200
    assert "Configurez votre application d'authentification" in response.text
    assert 'src="data:image/svg+xml;base64,' in response.text
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert totp_secret(device) in response.text
    assert client.get(reverse("practitioners:home")).status_code == 302  # not signed in yet

    code = app_code(device)
    response = client.post(reverse("practitioners:enrol"), {"code": other_code(code)})
    assert response.status_code == 200 and BAD_CODE in response.text
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()

    clock.shift(2)
    response = client.post(reverse("practitioners:enrol"), {"code": code})
    assert response.status_code == 302 and response.url == reverse("practitioners:backup_codes")
    device.refresh_from_db()
    assert device.confirmed

    response = client.get(reverse("practitioners:backup_codes"))
    assert response.status_code == 200
    assert "Vos codes de secours" in response.text and "Ils ne seront plus jamais affichés." in response.text
    shown = set(re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.text))
    assert shown == set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    assert len(shown) == 10
    assert client.get(reverse("practitioners:backup_codes")).status_code == 302  # shown once

    response = client.get(reverse("practitioners:home"))
    assert response.status_code == 200
    assert "Bonjour Dr Claire Dubois" in response.text
    assert "Il vous reste 10 codes de secours." in response.text
    assert client.session.get_expiry_age() == 15 * 60  # shorter idle timeout for practitioners

    client.post(reverse("patients:logout"))
    assert client.get(reverse("practitioners:home")).status_code == 302
    clock.shift(30)
    response = practitioner_password(client, "Claire.Dubois@example.fr")  # e-mail works as identifier too
    assert response.status_code == 302 and response.url == reverse("practitioners:verify")
    response = client.get(reverse("practitioners:verify"))
    assert response.status_code == 200 and "codes de" in response.text
    response = client.post(reverse("practitioners:verify"), {"code": app_code(device)})
    assert response.status_code == 302 and response.url == reverse("practitioners:home")
    assert client.get(reverse("practitioners:home")).status_code == 200


def test_backup_code_is_accepted_once_only(client, david, clock):
    codes = do_issue_backup_codes(david.user, actor=david.user)
    practitioner_password(client, "10100534436")
    response = client.post(reverse("practitioners:verify"), {"code": codes[0].upper()})
    assert response.status_code == 302 and response.url == reverse("practitioners:home")
    assert "Il vous reste 9 codes de secours." in client.get(reverse("practitioners:home")).text
    client.post(reverse("patients:logout"))

    practitioner_password(client, "10100534436")
    response = client.post(reverse("practitioners:verify"), {"code": codes[0]})
    assert response.status_code == 200 and BAD_CODE in response.text
    clock.shift(2)
    response = client.post(reverse("practitioners:verify"), {"code": codes[1]})
    assert response.status_code == 302
    assert StaticToken.objects.filter(device__user=david.user).count() == 8


def test_practitioner_can_renew_backup_codes(client, david, clock):
    old = set(do_issue_backup_codes(david.user, actor=david.user))
    practitioner_password(client, "10100534436")
    client.post(reverse("practitioners:verify"), {"code": app_code(TOTPDevice.objects.get(user=david.user))})
    response = client.post(reverse("practitioners:renew_backup_codes"), follow=True)
    shown = set(re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.text))
    assert len(shown) == 10 and not shown & old
    assert set(StaticToken.objects.filter(device__user=david.user).values_list("token", flat=True)) == shown


def test_practitioner_email_code_is_not_a_second_factor(client, david, clock):
    """Practitioners must use their app (or a backup code): an e-mail device is never consulted."""
    from django_otp.plugins.otp_email.models import EmailDevice

    EmailDevice.objects.create(user=david.user, name="Courriel", token="123456", valid_until=T0 + timedelta(minutes=5))
    totp_code = app_code(TOTPDevice.objects.get(user=david.user))
    practitioner_password(client, "10100534436")
    response = client.post(reverse("practitioners:verify"), {"code": "123456" if totp_code != "123456" else "654321"})
    assert response.status_code == 200 and BAD_CODE in response.text


def test_suspended_practitioner_is_told_only_after_the_right_password(client, david):
    david.status = Practitioner.Status.SUSPENDED
    david.save(update_fields=["status"])
    response = practitioner_password(client, "10100534436", password="pas-le-bon")
    assert response.status_code == 200
    assert BAD_PRACTITIONER_CREDENTIALS in response.text and "suspendu" not in response.text
    response = practitioner_password(client, "10100534436")
    assert response.status_code == 200
    assert "Votre compte est suspendu" in response.text
    assert client.get(reverse("practitioners:verify")).status_code == 302  # no second step


def test_practitioner_suspended_during_a_session_is_signed_out(client, david, clock):
    practitioner_password(client, "10100534436")
    client.post(reverse("practitioners:verify"), {"code": app_code(TOTPDevice.objects.get(user=david.user))})
    assert client.get(reverse("practitioners:home")).status_code == 200
    Practitioner.objects.filter(pk=david.pk).update(status=Practitioner.Status.SUSPENDED)
    response = client.get(reverse("practitioners:home"))
    assert response.status_code == 302 and response.url.startswith(reverse("practitioners:login"))
    assert "_auth_user_id" not in client.session


# --- No account oracle --------------------------------------------------------------------------------


def _error_text(response) -> str:
    return re.search(r'<div class="error" role="alert">(.*?)</div>', response.text, re.S).group(1)


def test_unknown_account_and_wrong_password_look_the_same(client, alice, david, settings):
    settings.PASSWORD_HASHERS = ["tests.test_signin.CountingHasher"]

    CountingHasher.calls = 0
    unknown = patient_password(client, "personne@example.fr")
    assert CountingHasher.calls == 1  # a password is hashed even without an account
    CountingHasher.calls = 0
    wrong = patient_password(client, "alice.martin@example.fr", password="pas-le-bon")
    assert CountingHasher.calls == 1
    assert unknown.status_code == wrong.status_code == 200
    assert _error_text(unknown) == _error_text(wrong)
    assert BAD_PATIENT_CREDENTIALS in _error_text(wrong)

    CountingHasher.calls = 0
    unknown = practitioner_password(client, "10000000000")
    assert CountingHasher.calls == 1
    CountingHasher.calls = 0
    wrong = practitioner_password(client, "10100534436", password="pas-le-bon")
    assert CountingHasher.calls == 1
    assert _error_text(unknown) == _error_text(wrong)
    assert BAD_PRACTITIONER_CREDENTIALS in _error_text(wrong)
    assert mail.outbox == []


# --- Throttling ---------------------------------------------------------------------------------------


def test_account_throttled_after_n_failures_even_with_the_right_password(client, alice, settings, clock):
    settings.CARNET_LOGIN_ATTEMPTS = 3
    settings.CARNET_LOGIN_WINDOW_SECONDS = 600
    settings.PASSWORD_HASHERS = ["tests.test_signin.CountingHasher"]
    for n in range(3):
        response = patient_password(client, "alice.martin@example.fr", password=f"faux-{n}", REMOTE_ADDR=f"10.0.0.{n}")
        assert BAD_PATIENT_CREDENTIALS in response.text
    CountingHasher.calls = 0
    response = patient_password(Client(), "alice.martin@example.fr", REMOTE_ADDR="10.0.9.9")
    assert response.status_code == 429
    assert response["Retry-After"] == "600"  # the window started with the first failure (the clock is frozen)
    assert "Trop de tentatives de connexion" in response.text
    assert CountingHasher.calls == 0  # refused without checking the password
    assert mail.outbox == []

    clock.shift(601)  # the window lapses
    response = patient_password(Client(), "alice.martin@example.fr", REMOTE_ADDR="10.0.9.9")
    assert response.status_code == 302


def test_client_address_throttled_across_accounts(alice, settings):
    settings.CARNET_LOGIN_ADDRESS_ATTEMPTS = 3
    attacker = Client(REMOTE_ADDR="192.0.2.7")
    for n in range(3):
        patient_password(attacker, f"inconnu{n}@example.fr")
    response = patient_password(attacker, "alice.martin@example.fr")
    assert THROTTLED in response.text
    response = patient_password(Client(REMOTE_ADDR="192.0.2.8"), "alice.martin@example.fr")
    assert response.status_code == 302


def test_unknown_account_is_throttled_like_a_known_one(client, settings):
    settings.CARNET_LOGIN_ATTEMPTS = 2
    for n in range(2):
        patient_password(Client(REMOTE_ADDR=f"10.1.0.{n}"), "personne@example.fr")
    response = patient_password(Client(REMOTE_ADDR="10.1.0.9"), "personne@example.fr")
    assert THROTTLED in response.text


def test_wrong_codes_count_towards_the_throttle(client, etienne, settings, clock):
    settings.CARNET_LOGIN_ATTEMPTS = 3
    device = TOTPDevice.objects.get(user=etienne)
    patient_password(client, "etienne.roux@example.fr")
    for _ in range(3):
        response = client.post(reverse("patients:verify"), {"code": other_code(app_code(device))})
        assert BAD_CODE in response.text
        clock.shift(10)
    response = client.post(reverse("patients:verify"), {"code": app_code(device)})
    assert THROTTLED in response.text
    assert client.get(reverse("patients:dashboard")).status_code == 302


def test_django_otp_device_throttle_applies_to_codes(client, etienne, clock):
    device = TOTPDevice.objects.get(user=etienne)
    patient_password(client, "etienne.roux@example.fr")
    client.post(reverse("patients:verify"), {"code": other_code(app_code(device))})
    response = client.post(reverse("patients:verify"), {"code": app_code(device)})  # within django-otp's delay
    assert "Trop de codes erronés" in response.text
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


def test_practitioner_door_is_throttled(client, david, settings):
    settings.CARNET_LOGIN_ATTEMPTS = 2
    for _ in range(2):
        practitioner_password(client, "10100534436", password="pas-le-bon")
    response = practitioner_password(Client(REMOTE_ADDR="10.2.0.1"), "10100534436")
    assert response.status_code == 429 and THROTTLED in response.text
    assert int(response["Retry-After"]) > 0


# --- Staff (OTP admin) --------------------------------------------------------------------------------


def test_admin_refuses_staff_without_a_verified_device(client, karim):
    response = client.post(reverse("admin:login"), {"username": "karim.benali", "password": PASSWORD})
    assert response.status_code == 200  # a code is required, and Karim has no device
    assert client.get(reverse("admin:index")).status_code == 302

    client.force_login(karim)  # authenticated but not verified
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))


def test_admin_accepts_staff_with_a_verified_device(client, karim, clock):
    device = TOTPDevice.objects.create(user=karim, name="Téléphone", confirmed=True)
    response = client.post(
        reverse("admin:login"),
        {
            "username": "karim.benali",
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": app_code(device),
        },
    )
    assert response.status_code == 302
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "Carnet — administration" in response.text


def test_admin_door_is_throttled(client, karim, settings, clock):
    settings.CARNET_LOGIN_ATTEMPTS = 2
    device = TOTPDevice.objects.create(user=karim, name="Téléphone", confirmed=True)
    for _ in range(2):
        client.post(reverse("admin:login"), {"username": "karim.benali", "password": "pas-le-bon"})
    response = Client(REMOTE_ADDR="10.3.0.1").post(
        reverse("admin:login"),
        {
            "username": "karim.benali",
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": app_code(device),
        },
    )
    assert response.status_code == 429 and THROTTLED in response.text
    assert int(response["Retry-After"]) > 0


# --- Sign-out -----------------------------------------------------------------------------------------


def test_sign_out_is_post_only(client, etienne, clock):
    sign_in_etienne(client, etienne)
    assert client.get(reverse("patients:logout")).status_code == 405
    assert client.get(reverse("patients:dashboard")).status_code == 200
    response = client.post(reverse("patients:logout"), follow=True)
    assert "Vous êtes déconnecté." in response.text
    assert client.get(reverse("patients:dashboard")).status_code == 302


def test_sign_out_everywhere_ends_the_other_sessions(etienne, clock):
    laptop, phone = Client(), Client()
    sign_in_etienne(laptop, etienne)
    clock.shift(30)
    sign_in_etienne(phone, etienne)
    assert laptop.get(reverse("patients:dashboard")).status_code == 200
    assert phone.get(reverse("patients:dashboard")).status_code == 200

    response = phone.post(reverse("patients:logout_everywhere"), follow=True)
    assert "Vous êtes déconnecté de tous vos appareils." in response.text
    response = laptop.get(reverse("patients:dashboard"))
    assert response.status_code == 302 and response.url.startswith(reverse("patients:login"))
    assert "_auth_user_id" not in laptop.session  # the stale session was ended, not just refused
    assert phone.get(reverse("patients:dashboard")).status_code == 302

    clock.shift(30)
    sign_in_etienne(laptop, etienne)  # signing in again works with the new epoch
    assert laptop.get(reverse("patients:dashboard")).status_code == 200


def test_sign_out_everywhere_ends_admin_sessions_too(karim):
    admin_client = verified_client(Client(), karim)
    assert admin_client.get(reverse("admin:index")).status_code == 200
    other = verified_client(Client(), karim)
    other.post(reverse("patients:logout_everywhere"))
    assert admin_client.get(reverse("admin:index")).status_code == 302


def test_sessions_survive_a_lost_cache(etienne, clock):
    client = Client()
    sign_in_etienne(client, etienne)
    cache.clear()  # a Redis restart: the session epoch lives in the database (issue 14)
    assert client.get(reverse("patients:dashboard")).status_code == 200


def test_a_session_stamped_by_the_old_cache_epoch_is_over(etienne, clock):
    from accounts.auth import EPOCH_SESSION_KEY

    client = Client()
    sign_in_etienne(client, etienne)
    session = client.session
    session[EPOCH_SESSION_KEY] = "a-token-from-redis"  # stamped before the epoch moved to the database
    session.save()
    assert client.get(reverse("patients:dashboard")).status_code == 302


def test_verified_client_helper_opens_the_guarded_pages(alice, david):
    assert verified_client(Client(), alice).get(reverse("patients:dashboard")).status_code == 200
    response = verified_client(Client(), david.user).get(reverse("practitioners:home"))
    assert response.status_code == 200 and "Dr David Lambert" in response.text
    # A patient session does not open the practitioner pages, and the other way round.
    assert verified_client(Client(), alice).get(reverse("practitioners:home")).status_code == 302
    assert verified_client(Client(), david.user).get(reverse("patients:dashboard")).status_code == 302
