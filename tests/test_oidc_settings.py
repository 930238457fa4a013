"""The national providers' configuration: env variables, system checks, and none configured (issue 17, item 5)."""

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from accounts.checks import check_national_providers

ROOT = Path(__file__).resolve().parent.parent


def ids(settings) -> set[str]:
    return {error.id for error in check_national_providers(None)}


def psc(settings, **values):
    settings.CARNET_PSC = {**settings.CARNET_PSC, **values}


def test_none_configured_is_fine(settings):
    settings.DEBUG = False
    assert ids(settings) == set()


def test_an_issuer_without_a_client_id_is_refused(settings):
    psc(settings, issuer="https://psc.example", client_id="")
    assert ids(settings) == {"carnet.E041"}


def test_exactly_one_client_credential_is_required(settings):
    psc(settings, issuer="https://psc.example", client_id="carnet", client_secret="", private_key="")
    assert "carnet.E042" in ids(settings)
    psc(settings, client_secret="s3cret")
    assert ids(settings) == set()


def test_a_plain_http_issuer_is_refused_in_production(settings):
    settings.DEBUG = False
    settings.CARNET_FRANCECONNECT = {
        **settings.CARNET_FRANCECONNECT,
        "issuer": "http://fc.example",
        "client_id": "carnet",
        "client_secret": "s3cret",
    }
    assert ids(settings) == {"carnet.E043"}
    settings.DEBUG = True
    assert ids(settings) == set()


def test_the_private_key_must_be_a_pem_private_key(settings):
    psc(settings, issuer="https://psc.example", client_id="carnet", private_key="not a key")
    assert ids(settings) == {"carnet.E044"}
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    psc(settings, private_key=pem.decode())
    assert ids(settings) == set()


def test_an_api_audience_needs_psc_configured(settings):
    psc(settings, api_audience="carnet-api")
    assert ids(settings) == {"carnet.E045"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "'' '' ['eidas2', 'eidas3']"),
        (
            {
                "CARNET_PSC_ISSUER": "https://psc.example/",
                "CARNET_PSC_CLIENT_ID": "carnet",
                "CARNET_PSC_STRONG_ACR": "eidas3",
            },
            "'https://psc.example' 'carnet' ['eidas3']",
        ),
    ],
)
def test_the_environment_sets_each_provider(env, expected, tmp_path):
    """The settings come from CARNET_PSC_* / CARNET_FRANCECONNECT_* (secrets from *_FILE too)."""
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    code = (
        "from django.conf import settings as s; c = s.CARNET_PSC; "
        "print(repr(c['issuer']), repr(c['client_id']), c['strong_acr'], c['client_secret'] == 'from-a-file')"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PATH": "/usr/bin",
            "CARNET_PSC_CLIENT_SECRET_FILE": str(secret),
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == f"{expected} True"
