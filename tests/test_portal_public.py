"""Before activation: the opposition page (L2) and the activation flow (L4), throttled, without a NIR oracle."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from access_control.models import TrailEntry
from notifications.models import Notice
from records import actions as profile_actions
from records.models import Profile, User
from tests.portal_fixtures import GENERIC_IDENTITY_ERROR, _fresh_cache, enrol_pending, identity, text, url  # noqa: F401

pytestmark = pytest.mark.django_db

PASSWORD = "Tilleul-Pivoine-2024!"
THROTTLED = "Trop de tentatives"


@pytest.fixture
def fast_codes(monkeypatch):
    from records.lifecycle import ProvisionalCodeHasher

    monkeypatch.setattr(ProvisionalCodeHasher, "iterations", 1_000)


def emailed_code() -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


# --- L2: opposition ---------------------------------------------------------------------------------------


def test_opposition_in_the_window_records_it_and_confirms__L2(client, fast_codes):
    profile, code = enrol_pending()
    response = client.get(url("opposition"))
    assert response.status_code == 200 and "42 jours" in text(response)

    response = client.post(url("opposition"), identity(profile, code))
    assert response.status_code == 302 and response.url == url("opposition_done")
    profile.refresh_from_db()
    assert profile.state == Profile.State.OPPOSED
    assert Notice.objects.filter(profile=profile, kind=Notice.Kind.OPPOSITION).exists()
    assert TrailEntry.objects.filter(profile=profile, action="opposition").count() == 1

    page = client.get(url("opposition_done"))
    assert "Votre opposition est enregistrée" in text(page)
    assert client.get(url("opposition_done")).status_code == 302  # shown once

    # A replayed form changes nothing and says why (the code holder only).
    response = client.post(url("opposition"), identity(profile, code))
    assert "Une opposition est déjà enregistrée" in text(response)
    assert TrailEntry.objects.filter(profile=profile, action="opposition").count() == 1


def test_opposition_never_reveals_whether_a_nir_exists__L2(client, fast_codes):
    profile, code = enrol_pending()
    unknown = client.post(url("opposition"), identity(profile, code, nir="1 85 05 78 006 084 91"))
    wrong_code = client.post(url("opposition"), identity(profile, "AAAAAAAAAA"))
    wrong_birth_date = client.post(url("opposition"), identity(profile, code, birth_date="1995-05-18"))
    for response in (unknown, wrong_code, wrong_birth_date):
        assert response.status_code == 200
        assert GENERIC_IDENTITY_ERROR in text(response)
    profile.refresh_from_db()
    assert profile.state == Profile.State.PENDING


def test_opposition_after_the_window_is_refused_clearly__L2(client, fast_codes, personas):
    bernard = personas.bernard  # opened after the window
    _profile, code = profile_actions.do_reissue_provisional_code(bernard, actor=None)
    response = client.post(url("opposition"), identity(bernard, code))
    assert "Le délai d" in text(response) and "terminé" in text(response)
    bernard.refresh_from_db()
    assert bernard.state == Profile.State.OPEN


def test_opposition_is_throttled_per_nir_and_per_address_with_retry_after(client, fast_codes, settings):
    settings.CARNET_LOGIN_ATTEMPTS = 3
    settings.CARNET_LOGIN_ADDRESS_ATTEMPTS = 5
    profile, code = enrol_pending()
    for _ in range(3):
        client.post(url("opposition"), identity(profile, "WRONGCODE2"))
    response = client.post(url("opposition"), identity(profile, code))  # even the right code
    assert response.status_code == 429 and THROTTLED in text(response)
    assert 0 < int(response["Retry-After"]) <= settings.CARNET_LOGIN_WINDOW_SECONDS
    profile.refresh_from_db()
    assert profile.state == Profile.State.PENDING
    # The same NIR from another address is still throttled (per NIR counter).
    response = client.post(url("opposition"), identity(profile, code), REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 429 and THROTTLED in text(response)
    # Another NIR from the same address is not locked out by a neighbour's three typos (the address counter
    # has its own, higher limit, like sign-in's) ...
    other, other_code = enrol_pending(
        "1880575114011", first_names="Paul", sex="M", birth_date=__import__("datetime").date(1988, 5, 1)
    )
    response = client.post(url("opposition"), identity(other, "WRONGCODE3"), REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200 and GENERIC_IDENTITY_ERROR in text(response)
    client.post(url("opposition"), identity(other, "WRONGCODE4"), REMOTE_ADDR="127.0.0.1")
    # ... but the address that failed five times in all is stopped, whatever NIR it types.
    response = client.post(url("opposition"), identity(other, other_code), REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    other.refresh_from_db()
    assert other.state == Profile.State.PENDING


# --- L4: activation ---------------------------------------------------------------------------------------


def _activation_data(profile, code, **overrides):
    data = identity(profile, code, email="nina.nouvel@courriel.example", password1=PASSWORD, password2=PASSWORD)
    data.update(overrides)
    return data


def test_activation_with_totp_enrols_and_shows_backup_codes_once__L4(client, fast_codes):
    profile, code = enrol_pending()  # a pending profile may be activated during its window
    mail.outbox.clear()
    response = client.post(url("activation"), _activation_data(profile, code))
    assert response.status_code == 302 and response.url == url("activation_email")
    profile.refresh_from_db()
    assert profile.state == Profile.State.ACTIVE and not profile.email_verified
    assert client.get(url("dashboard")).status_code == 302  # not signed in yet

    # E-mail verified by a code (N2).
    assert mail.outbox[-1].to == ["nina.nouvel@courriel.example"]
    assert "Nina" not in mail.outbox[-1].body and "NOUVEL" not in mail.outbox[-1].body
    code_sent = emailed_code()
    wrong = "000000" if code_sent != "000000" else "111111"
    response = client.post(url("activation_email"), {"code": wrong})
    assert "Code incorrect" in text(response)
    response = client.post(url("activation_email"), {"code": code_sent})
    assert response.status_code == 302 and response.url == url("activation_second_factor")
    profile.refresh_from_db()
    assert profile.email_verified

    # TOTP enrolment with the QR code's secret.
    page = client.get(url("activation_second_factor"))
    assert "data:image/svg+xml;base64," in text(page)
    device = TOTPDevice.objects.get(user=profile.user, confirmed=False)
    token = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"
    response = client.post(url("activation_second_factor"), {"method": "totp", "code": token})
    assert response.status_code == 302 and response.url == url("backup_codes")
    page = client.get(url("backup_codes"))
    codes = re.findall(r"<li><code>([a-z0-9]+)</code></li>", text(page))
    assert len(codes) == 10
    assert StaticToken.objects.filter(device__user=profile.user).count() == 10
    assert client.get(url("backup_codes")).status_code == 302  # shown once
    assert "Bonjour Nina" in client.get(url("dashboard")).text


def test_activation_with_email_codes_signs_in__L4(client, fast_codes):
    profile, code = enrol_pending()
    client.post(url("activation"), _activation_data(profile, code))
    client.post(url("activation_email"), {"code": emailed_code()})
    response = client.post(url("activation_second_factor"), {"method": "email"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=profile.user, confirmed=True).exists()
    assert client.get(url("dashboard")).status_code == 200


def test_activation_steps_cannot_be_skipped__L4(client, fast_codes):
    assert client.get(url("activation_email")).status_code == 302
    assert client.get(url("activation_second_factor")).status_code == 302
    profile, code = enrol_pending()
    client.post(url("activation"), _activation_data(profile, code))
    # The second factor step needs the verified e-mail first.
    response = client.post(url("activation_second_factor"), {"method": "email"})
    assert response.status_code == 302 and response.url == url("activation")
    assert client.get(url("dashboard")).status_code == 302


def test_activation_refuses_with_one_generic_message_and_creates_nothing__L4(client, fast_codes):
    profile, code = enrol_pending()
    for data in (
        _activation_data(profile, "ZZZZZZZZZZ"),
        _activation_data(profile, code, birth_date="1990-01-01"),
        _activation_data(profile, code, nir="1 85 05 78 006 084 91"),
    ):
        response = client.post(url("activation"), data)
        assert GENERIC_IDENTITY_ERROR in text(response)
    assert not User.objects.filter(kind=User.Kind.PATIENT).exists()


def test_activation_checks_the_password_before_anything(client, fast_codes):
    profile, code = enrol_pending()
    response = client.post(url("activation"), _activation_data(profile, code, password1="court", password2="court"))
    assert "trop court" in text(response)
    response = client.post(url("activation"), _activation_data(profile, code, password2="autre-chose-123"))
    assert "ne sont pas identiques" in text(response)
    profile.refresh_from_db()
    assert profile.user_id is None


def test_activation_of_an_opposed_profile_is_refused_clearly__L4(client, fast_codes):
    profile, code = enrol_pending()
    profile_actions.do_record_opposition(profile, actor=None, provisional_code=code)
    response = client.post(url("activation"), _activation_data(profile, code))
    assert "Une opposition a été enregistrée" in text(response)
    assert not User.objects.filter(kind=User.Kind.PATIENT).exists()


def test_activation_is_throttled_with_retry_after(client, fast_codes, settings):
    settings.CARNET_LOGIN_ATTEMPTS = 2
    profile, code = enrol_pending()
    client.post(url("activation"), _activation_data(profile, "BADBADBAD2"))
    client.post(url("activation"), _activation_data(profile, "BADBADBAD3"))
    response = client.post(url("activation"), _activation_data(profile, code))
    assert response.status_code == 429 and THROTTLED in text(response)
    assert 0 < int(response["Retry-After"]) <= settings.CARNET_LOGIN_WINDOW_SECONDS
    profile.refresh_from_db()
    assert profile.user_id is None


def test_public_pages_are_reachable_from_the_notice_paths():
    # notifications.content prints these paths in the notices (L1).
    assert reverse("patients:activation") == "/activer/"
    assert reverse("patients:opposition") == "/opposition/"
    assert reverse("patients:trail") == "/trace/"
    assert reverse("patients:privacy") == "/confidentialite/"
