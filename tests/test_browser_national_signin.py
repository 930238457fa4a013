"""Pro Santé Connect and FranceConnect walked end to end in Chromium against a real OpenID provider (issue 17).

Carnet runs on pytest-django's live server, npm ``oidc-provider`` on loopback poses as each provider
(tests/oidc_fixtures.py). The browser presses Carnet's button, signs in on the provider's page, comes back
signed in, and signs out through the provider's end-session page. Screenshots go to docs/screenshots/.
"""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import FranceConnectLink
from tests.browser import screenshot
from tests.oidc_fixtures import FC_IDENTITIES, OpenIdProvider, configure_fc, configure_psc, fc_config, psc_config
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]


@pytest.fixture
def csp_violations(page):
    seen = []
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    return seen


@pytest.fixture
def live_psc(live_server, settings):
    provider = OpenIdProvider(psc_config([live_server.url])).start()
    configure_psc(settings, provider)
    yield provider
    provider.stop()


@pytest.fixture
def live_fc(live_server, settings):
    provider = OpenIdProvider(fc_config([live_server.url], dict(FC_IDENTITIES))).start()
    configure_fc(settings, provider)
    yield provider
    provider.stop()


def test_a_practitioner_signs_in_and_out_with_pro_sante_connect(page, personas, live_psc, csp_violations):
    page.goto("/pro/connexion/")
    screenshot(page, "psc-01-carnet-login")
    page.click("text=Se connecter avec Pro Santé Connect")
    expect(page.locator("h1")).to_have_text("Pro Santé Connect (test)")
    page.fill("#login", personas.david.rpps)
    page.select_option("#acr", "eidas3")
    screenshot(page, "psc-02-provider")
    page.click("text=Se connecter")
    expect(page).to_have_url(re.compile(r"/pro/$"))  # eidas3: no TOTP asked
    screenshot(page, "psc-03-signed-in")
    page.click("header >> text=Se déconnecter")
    expect(page).to_have_url(re.compile(r"^" + re.escape(live_psc.issuer) + r"/session/end"))
    page.click("button[type=submit][value=yes], button[autofocus]")  # the provider asks to confirm
    expect(page).to_have_url(re.compile(r"/pro/connexion/$"))
    expect(page.locator(".messages")).to_contain_text("déconnecté de Carnet et de Pro Santé Connect")
    assert csp_violations == []


def test_an_unknown_rpps_is_refused_in_the_browser(page, personas, live_psc):
    page.goto("/pro/connexion/")
    page.click("text=Se connecter avec Pro Santé Connect")
    page.fill("#login", "10009999994")
    page.click("text=Se connecter")
    expect(page).to_have_url(re.compile(r"/pro/connexion/$"))
    expect(page.locator(".messages")).to_contain_text("n'est pas inscrit dans Carnet")
    screenshot(page, "psc-04-unknown-rpps")


def test_a_patient_signs_in_with_franceconnect_plus(page, personas, live_fc, csp_violations):
    page.goto("/connexion/")
    screenshot(page, "franceconnect-01-carnet-login")
    page.click("text=S'identifier avec FranceConnect")
    page.fill("#login", "alice")
    page.select_option("#acr", "eidas2")
    page.click("text=Se connecter")
    expect(page).to_have_url(re.compile(r"/espace/$"))  # FranceConnect+: no second factor
    screenshot(page, "franceconnect-02-signed-in")
    assert FranceConnectLink.objects.filter(user=personas.alice.user).exists()
    page.goto("/mes-donnees/franceconnect/")
    expect(page.locator("main")).to_contain_text("FranceConnect permet de vous connecter")
    screenshot(page, "franceconnect-03-account")
    assert csp_violations == []


def test_a_patient_without_a_match_is_pointed_to_the_provisional_code(page, personas, live_fc):
    page.goto("/connexion/")
    page.click("text=S'identifier avec FranceConnect")
    page.fill("#login", "inconnue")
    page.click("text=Se connecter")
    expect(page).to_have_url(re.compile(r"/connexion/franceconnect/introuvable/$"))
    expect(page.locator("main")).to_contain_text("code provisoire")
    screenshot(page, "franceconnect-04-no-match")
