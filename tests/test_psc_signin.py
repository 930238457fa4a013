"""Pro Santé Connect on the practitioner door, against a real OpenID provider on loopback (issue 17, item 1).

The provider is npm ``oidc-provider`` posing as PSC (tests/oidc_fixtures.py): Django's test client presses the
button, the provider's sign-in form is posted over HTTP, and the callback goes through authlib (code exchange
with PKCE, ID token, userinfo) for real.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from joserfc.jwk import RSAKey

from access_control.models import TrailEntry
from access_control.trail import entry_hash, verify_chain
from accounts.auth import PROVIDER_SESSION_KEY
from accounts.models import ProviderDevice
from practitioners.models import Practitioner
from records.models import User
from tests.oidc_fixtures import OpenIdProvider, client_sign_in, configure_psc, psc_config, signing_key
from tests.pro_fixtures import open_record, signed_in

pytestmark = pytest.mark.django_db

START = "/pro/connexion/psc/"
UNKNOWN_RPPS = "10009999994"


def psc_sign_in(client, provider, practitioner_or_rpps, acr="eidas3", **kwargs):
    rpps = getattr(practitioner_or_rpps, "rpps", practitioner_or_rpps)
    return client_sign_in(client, provider, START, login=rpps, acr=acr, **kwargs)


def messages_of(client, response) -> str:
    return client.get(response["Location"]).content.decode()


def test_strong_level_signs_in_without_the_totp_and_keeps_the_acr(client, personas, psc_provider):
    response = psc_sign_in(client, psc_provider, personas.david, acr="eidas3")
    assert response.status_code == 302 and response["Location"] == reverse("practitioners:home")
    assert client.get(reverse("practitioners:home")).status_code == 200
    session = client.session[PROVIDER_SESSION_KEY]
    assert session["provider"] == "psc" and session["acr"] == "eidas3" and session["id_token"]
    assert ProviderDevice.objects.filter(user=personas.david.user, provider="psc").count() == 1


def test_weak_level_still_asks_carnets_second_factor(client, personas, psc_provider):
    response = psc_sign_in(client, psc_provider, personas.david, acr="eidas1")
    assert response.status_code == 302 and response["Location"] == reverse("practitioners:enrol")
    home = client.get(reverse("practitioners:home"))
    assert home.status_code == 302 and home["Location"].startswith(reverse("practitioners:login"))
    assert not ProviderDevice.objects.exists()


def test_strong_levels_are_configurable(client, personas, psc_provider, settings):
    settings.CARNET_PSC = {**settings.CARNET_PSC, "strong_acr": ["eidas3"]}
    response = psc_sign_in(client, psc_provider, personas.david, acr="eidas2")
    assert response["Location"] == reverse("practitioners:enrol")


def test_unknown_rpps_is_refused_and_nothing_is_created(client, personas, psc_provider):
    users, practitioners = User.objects.count(), Practitioner.objects.count()
    response = psc_sign_in(client, psc_provider, UNKNOWN_RPPS)
    assert response.status_code == 302 and response["Location"] == reverse("practitioners:login")
    assert "n&#x27;est pas inscrit dans Carnet" in messages_of(client, response)
    assert (User.objects.count(), Practitioner.objects.count()) == (users, practitioners)
    assert "_auth_user_id" not in client.session


def test_suspended_practitioner_is_refused(client, personas, psc_provider):
    Practitioner.objects.filter(pk=personas.hugo.pk).update(status=Practitioner.Status.SUSPENDED)
    response = psc_sign_in(client, psc_provider, personas.hugo)
    assert "Votre compte est suspendu" in messages_of(client, response)
    assert "_auth_user_id" not in client.session


def test_cancelling_at_the_provider_says_so(client, personas, psc_provider):
    response = psc_sign_in(client, psc_provider, personas.david, cancel=True)
    assert "Connexion par Pro Santé Connect annulée" in messages_of(client, response)


def test_a_callback_with_a_forged_state_is_refused(client, personas, psc_provider):
    start = client.post(START)
    location = psc_provider.sign_in(
        start["Location"], login=personas.david.rpps, acr="eidas3", until="http://testserver"
    )
    query = parse_qs(urlsplit(location).query)
    response = client.get(reverse("practitioners:psc_callback"), {"code": query["code"][0], "state": "forged"})
    assert "n&#x27;a pas abouti" in messages_of(client, response)
    assert "_auth_user_id" not in client.session


def test_each_consultation_carries_the_level_of_assurance_in_the_trail__T1_T2(client, personas, psc_provider):
    psc_sign_in(client, psc_provider, personas.david, acr="eidas3")
    before = TrailEntry.objects.count()
    open_record(client, personas.alice)
    entries = TrailEntry.objects.order_by("pk")[before:]
    assert entries and {(e.action, e.assurance) for e in entries} == {("open_record", "eidas3")}
    assert verify_chain(personas.alice.pk) == []  # the level is in the hash, and the chain holds
    entry = entries[0]
    entry.assurance = "eidas1"
    assert entry_hash(entry) != entry.hash  # an altered level no longer matches its hash


def test_password_sign_in_leaves_the_level_empty_and_old_hashes_hold__T2(client, personas):
    signed_in(client, personas.david)
    before = TrailEntry.objects.count()
    open_record(client, personas.alice)
    assert {e.assurance for e in TrailEntry.objects.order_by("pk")[before:]} == {""}
    assert verify_chain(personas.alice.pk) == []


def test_sign_out_goes_through_the_providers_end_session(client, personas, psc_provider):
    psc_sign_in(client, psc_provider, personas.david, acr="eidas3")
    id_token = client.session[PROVIDER_SESSION_KEY]["id_token"]
    response = client.post(reverse("patients:logout"))
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}" == psc_provider.issuer and url.path == "/session/end"
    query = parse_qs(url.query)
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == ["http://testserver/pro/connexion/psc/deconnecte/"]
    assert client.get(reverse("practitioners:home")).status_code == 302  # signed out of Carnet already


def test_the_button_shows_only_when_psc_is_configured(client, settings, db):
    assert "Pro Santé Connect" not in client.get(reverse("practitioners:login")).content.decode()
    settings.CARNET_PSC = {**settings.CARNET_PSC, "issuer": "https://psc.example", "client_id": "carnet"}
    assert "Se connecter avec Pro Santé Connect" in client.get(reverse("practitioners:login")).content.decode()


def test_carnet_can_authenticate_to_the_provider_with_a_private_key(client, personas, settings):
    """private_key_jwt (RFC 7523) instead of a client secret: CARNET_PSC_PRIVATE_KEY."""
    key = RSAKey.import_key(signing_key("carnet-client"))
    config = psc_config(["http://testserver"])
    config["clients"][0] = {
        **{k: v for k, v in config["clients"][0].items() if k != "client_secret"},
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "RS256",
        "jwks": {"keys": [key.as_dict(private=False)]},
    }
    provider = OpenIdProvider(config).start()
    try:
        configure_psc(settings, provider)
        pem = key.as_pem(private=True).decode()
        settings.CARNET_PSC = {**settings.CARNET_PSC, "client_secret": "", "private_key": pem}
        response = psc_sign_in(client, provider, personas.david, acr="eidas3")
        assert response["Location"] == reverse("practitioners:home")
    finally:
        provider.stop()


def test_the_api_called_with_a_psc_session_also_records_its_level__T1(client, personas, psc_provider):
    psc_sign_in(client, psc_provider, personas.david, acr="eidas2")
    body = {"nir": personas.alice.nir, "birth_date": personas.alice.birth_date.isoformat()}
    handle = client.post(reverse("api-pro-search"), body, content_type="application/json").json()["handle"]
    opened = client.post(
        reverse("api-pro-open", args=[handle]), {"attests_care_team": True}, content_type="application/json"
    )
    assert opened.status_code == 200, opened.content
    assert TrailEntry.objects.filter(action="open_record").latest("pk").assurance == "eidas2"
