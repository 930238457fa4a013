"""Helpers for the patient portal's tests: signed-in patients, fresh pending profiles, form tokens."""

import html
import io
import re
from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from patients.portal import STEP_UP_SESSION_KEY
from records import actions as profile_actions
from records.identifiers import make_nir
from records.models import Profile
from tests.signin_fixtures import verified_client

FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
GENERIC_IDENTITY_ERROR = "Les informations saisies ne permettent pas d'identifier votre profil"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def signed_in(client, profile):
    """``client`` signed in as the holder of ``profile`` (second factor done, session current)."""
    return verified_client(client, profile.user)


def stepped_up(client):
    """The step-up re-check done in this session (valid a few minutes)."""
    session = client.session
    session[STEP_UP_SESSION_KEY] = int(timezone.now().timestamp()) + 300
    session.save()
    return client


def form_token(response) -> str:
    match = FORM_TOKEN.search(response.content.decode())
    assert match, "no form token in the page"
    return match.group(1)


def enrol_pending(first13: str = "2950575114099", **fields) -> tuple[Profile, str]:
    """A fresh profile in its opposition window (L1, L2), with its provisional code."""
    values = {
        "birth_name": "NOUVEL",
        "first_names": "Nina",
        "birth_date": date(1995, 5, 17),
        "sex": "F",
        "address_street": "5 rue de la Paix",
        "postal_code": "75002",
        "city": "PARIS",
    }
    values.update(fields)
    profile, code = profile_actions.do_enrol_profile(nir=make_nir(first13), actor=None, **values)
    return profile, code


def identity(profile: Profile, code: str, **overrides) -> dict:
    data = {"nir": profile.nir, "provisional_code": code, "birth_date": profile.birth_date.isoformat()}
    data.update(overrides)
    return data


def png_bytes() -> bytes:
    from records.personas import small_png

    return small_png("test")


def upload_file(content: bytes, name: str):
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def past(days: int):
    return timezone.now() - timedelta(days=days)


def url(name, *args):
    return reverse(f"patients:{name}", args=args)


def text(response) -> str:
    """The page's text with HTML entities resolved (templates escape apostrophes, translations may not)."""
    return html.unescape(response.content.decode())
