"""Second factors that work as printed (issue 13, item 5): the three doors accept the same forms of a code,
the admin's form chooses the device by the code and speaks French, and the patient's second-factor page offers
backup codes and an e-mailed code."""

import re

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.second_factors import normalise_code
from records.models import User
from tests.test_signin import PASSWORD, T0, app_code, make_patient, make_practitioner, patient_password

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def _backup(user, token="demo0001"):
    device = StaticDevice.objects.create(user=user, name="Codes de secours", confirmed=True)
    StaticToken.objects.create(device=device, token=token)
    return device


@pytest.fixture
def karim():
    """Staff with two devices, as ``make run`` sets them up: an authenticator app and backup codes."""
    user = User.objects.create_user(
        username="karim.benali", password=PASSWORD, kind=User.Kind.STAFF, is_staff=True, is_superuser=True
    )
    TOTPDevice.objects.create(user=user, name="Téléphone", confirmed=True)
    _backup(user)
    return user


def test_one_normal_form_for_every_door():
    assert normalise_code(" DEMO-0001 ") == normalise_code("demo 0001") == normalise_code("demo0001") == "demo0001"
    assert normalise_code("123 456") == "123456"


@pytest.mark.parametrize("typed", ["demo-0001", "DEMO 0001", "demo0001"])
def test_admin_accepts_the_backup_code_as_printed_with_two_devices(client, karim, typed):
    response = client.post(
        reverse("admin:login"), {"username": "karim.benali", "password": PASSWORD, "otp_token": typed}
    )
    assert response.status_code == 302, response.content.decode()
    assert client.get(reverse("admin:index")).status_code == 200


def test_admin_accepts_the_app_code_without_choosing_a_device(client, karim, clock):
    device = TOTPDevice.objects.get(user=karim)
    response = client.post(
        reverse("admin:login"), {"username": "karim.benali", "password": PASSWORD, "otp_token": app_code(device)}
    )
    assert response.status_code == 302


def test_admin_login_speaks_french_and_refuses_clearly(client, karim):
    page = client.get(reverse("admin:login"))
    assert "Code de vérification" in page.text and "OTP" not in page.text
    response = client.post(
        reverse("admin:login"), {"username": "karim.benali", "password": PASSWORD, "otp_token": "zzzz-9999"}
    )
    assert response.status_code == 200
    assert "Code incorrect ou expiré." in response.text
    assert "Please select a device" not in response.text and "<select" not in response.text
    response = client.post(reverse("admin:login"), {"username": "karim.benali", "password": PASSWORD})
    assert "Saisissez le code de votre application" in response.text


def test_practitioner_door_accepts_the_backup_code_as_printed(client):
    practitioner = make_practitioner("David", "Lambert", "10100534436", "david.lambert@example.fr")
    TOTPDevice.objects.create(user=practitioner.user, name="Téléphone", confirmed=True)
    _backup(practitioner.user, "abcd2345")
    client.post(reverse("practitioners:login"), {"identifier": "10100534436", "password": PASSWORD})
    response = client.post(reverse("practitioners:verify"), {"code": "ABCD-2345"})
    assert response.status_code == 302 and response.url == reverse("practitioners:home")


def test_patient_page_offers_backup_and_emailed_codes(client, clock):
    etienne = make_patient("Étienne Paul", "ROUX", "etienne.roux@example.fr", "137047624348415", sex="M")
    TOTPDevice.objects.create(user=etienne, name="Téléphone", confirmed=True)
    _backup(etienne, "wxyz2345")
    patient_password(client, "etienne.roux@example.fr")
    assert mail.outbox == []  # with an app, no code is sent unasked
    page = client.get(reverse("patients:verify"))
    assert "un code de secours, ou un code reçu par courriel" in page.text
    assert "M&#x27;envoyer un code par courriel" in page.text or "M'envoyer un code par courriel" in page.text
    client.post(reverse("patients:verify"), {"resend": "1"})
    assert len(mail.outbox) == 1
    code = re.search(r"\b(\d{6})\b", mail.outbox[0].body).group(1)
    response = client.post(reverse("patients:verify"), {"code": code})
    assert response.status_code == 302 and response.url == reverse("patients:dashboard")


def test_patient_signs_in_with_a_backup_code_as_printed(client):
    etienne = make_patient("Étienne Paul", "ROUX", "etienne.roux@example.fr", "137047624348415", sex="M")
    TOTPDevice.objects.create(user=etienne, name="Téléphone", confirmed=True)
    _backup(etienne, "wxyz2345")
    patient_password(client, "etienne.roux@example.fr")
    response = client.post(reverse("patients:verify"), {"code": "WXYZ-2345"})
    assert response.status_code == 302 and response.url == reverse("patients:dashboard")
