"""Issue 17 in Chromium: Alice connects an app to her record, then withdraws its access.

authlib (the app's side) builds the authorisation URL with its PKCE challenge; Alice signs in and agrees on the
consent page in Chromium, under the portal's strict CSP (the form's redirect to the app must pass its
form-action); the browser is sent to the app's redirect URI, where the test reads the code; authlib exchanges the code
and reads her documents through FHIR. The consent and connected apps pages are checked with axe-core and
photographed, desktop and phone, into docs/screenshots/patient-app-consent*.png and patient-connected-apps*.png.
"""

import re

import pytest

from accounts.models import AppConnection
from tests import test_browser_portal as portal
from tests.browser import screenshot
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)
from tests.smart_fixtures import APP_NAME, REDIRECT_URI, app_session, authorisation_url, registered_app  # noqa: F401
from tests.test_browser_portal import _clean_mailbox, check_accessibility, sign_in  # noqa: F401

page = portal.page  # the portal walk's page fixture (inline axe-core allowed, CSP checked by check_accessibility)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data", "registered_app"),
]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture
def strict_tab(browser, live_server, settings):
    """A tab whose context enforces the pages' CSP (no bypass): what a patient's browser does."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    context = browser.new_context(base_url=live_server.url, locale="fr-FR", viewport=DESKTOP)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def watch_callback(tab) -> list[str]:
    """The URLs of the app's redirect URI the browser was sent to (nothing listens there: only the request counts).

    A request is made only if the consent form's redirect passed the page's CSP form-action.
    """
    landed: list[str] = []
    tab.on("request", lambda request: landed.append(request.url) if request.url.startswith(REDIRECT_URI) else None)
    return landed


def test_alice_connects_an_app_in_chromium_and_withdraws_it__T1_A9(strict_tab, page, live_server, personas):
    alice = personas.alice
    session = app_session()
    url, verifier = authorisation_url(session, live_server.url)

    # The flow, under the enforced CSP.
    sign_in(strict_tab, alice.email, personas.password)
    landed = watch_callback(strict_tab)
    strict_tab.goto(url)
    assert strict_tab.get_by_role("heading", level=1).inner_text().startswith(f"L'application « {APP_NAME} »")
    assert strict_tab.get_by_text("Santé Facile SAS").is_visible()
    assert strict_tab.get_by_label("Fanny MARTIN (que je représente)").is_visible()  # L10: she may choose Fanny
    strict_tab.get_by_label(re.compile(r"\(moi\)$")).check()
    strict_tab.get_by_role("button", name="Autoriser").click()
    strict_tab.wait_for_timeout(500)
    assert len(landed) == 1 and "code=" in landed[0]
    token = session.fetch_token(
        f"{live_server.url}/oauth/token/", authorization_response=landed[0], code_verifier=verifier
    )
    documents = session.get(f"{live_server.url}/fhir/DocumentReference?patient={token['patient']}")
    assert documents.status_code == 200 and documents.json()["total"] > 0

    # The pages, checked and photographed (axe-core needs the CSP bypass of the portal's fixture).
    sign_in(page, alice.email, personas.password)
    page.goto(url)
    check_accessibility(page, "app consent")
    screenshot(page, "patient-app-consent")
    page.set_viewport_size(PHONE)
    page.goto(url)  # a fresh page: axe-core's own script and styles stay out of the next check
    check_accessibility(page, "app consent, phone")
    screenshot(page, "patient-app-consent-phone")
    page.set_viewport_size(DESKTOP)
    page.goto("/applications/")
    assert page.get_by_role("heading", name=APP_NAME).is_visible()
    check_accessibility(page, "connected apps")
    screenshot(page, "patient-connected-apps")
    page.set_viewport_size(PHONE)
    page.goto("/applications/")
    check_accessibility(page, "connected apps, phone")
    screenshot(page, "patient-connected-apps-phone")

    page.get_by_role("button", name=f"Retirer l'accès de {APP_NAME}").click()
    assert page.get_by_text("Aucune application n'a accès à votre dossier.").is_visible()
    assert AppConnection.objects.get(profile=alice).revoked_at is not None
    refused = session.get(f"{live_server.url}/fhir/DocumentReference?patient={token['patient']}")
    assert refused.status_code == 401
