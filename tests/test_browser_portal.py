"""The patient portal in a real browser (Debian's Chromium through Playwright, against the live server).

Stories: Bernard activates his profile (L4); a newly enrolled person objects in time (L2); Alice masks a
document and the trail and the practitioner's view show it (A4, T3); Alice blocks Dr Hugo Bernard and unblocks
him (A5), and gives Dr David Lambert her treating doctor's rights after the step-up then withdraws them (A4);
Alice downloads her export; a page switched to English stays English. The main pages
are checked with axe-core (no serious or critical violation) and photographed into docs/screenshots/patient-*.png.

axe-core comes from npm (tests/js/package.json): ``npm ci --prefix tests/js``. Missing, the tests fail.
"""

import base64
import io
import json
import re
import zipfile
from datetime import date
from pathlib import Path

import pytest
from django.core import mail
from django_otp.oath import totp

from access_control import actions as access
from access_control.api import find_profile, visible_documents
from access_control.models import TreatingRightsGrant
from records import actions as profile_actions
from records.identifiers import make_nir
from records.models import Document, Profile
from tests.browser import screenshot
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),  # before ``personas``: the seeds a previous flush removed
]

AXE = Path(__file__).resolve().parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "Tilleul-Pivoine-2024!"


@pytest.fixture(autouse=True)
def _clean_mailbox():
    mail.outbox.clear()


@pytest.fixture
def page(browser, live_server, settings):
    """tests.browser's page, in a context that lets ``add_script_tag`` inject axe-core as an inline script.

    The pages' own CSP compliance is checked instead by ``check_accessibility``: no inline script, style or
    event handler in the page's markup, and the strict policy header on every portal response.
    """
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    context = browser.new_context(
        base_url=live_server.url, locale="fr-FR", viewport={"width": 1280, "height": 900}, bypass_csp=True
    )
    context.set_default_timeout(15_000)
    policies = []
    tab = context.new_page()
    tab.on("response", lambda response: policies.append(response.headers.get("content-security-policy", "")))
    tab.csp_policies = policies
    yield tab
    context.close()


INLINE_CODE = """() => ({
  scripts: document.querySelectorAll('script:not([src]):not([type="application/json"])').length,
  styles: document.querySelectorAll('style, [style]:not(canvas[data-chart])').length,
  handlers: [...document.querySelectorAll('*')].filter(el => [...el.attributes].some(a => a.name.startsWith('on'))).length,
})"""


def check_accessibility(tab, label: str) -> None:
    """axe-core on the current page: no serious or critical violation (WCAG 2.1 A and AA rules).

    First, the page must be usable under the strict CSP (script-src 'self', style-src 'self'): no inline code
    (``json_script`` data blocks are data, never run, and allowed; a chart's canvas gets its size from Chart.js
    through the CSSOM, which the CSP allows: ``tests/test_browser_polish.py`` draws the charts under the real
    policy).
    """
    assert tab.evaluate(INLINE_CODE) == {"scripts": 0, "styles": 0, "handlers": 0}, label
    assert "script-src 'self'" in tab.csp_policies[0], label
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run `npm ci --prefix tests/js`.")
    tab.add_script_tag(path=str(AXE))
    result = tab.evaluate(
        "async () => await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a',"
        " 'wcag21aa', 'best-practice']}, resultTypes: ['violations']})"
    )
    serious = [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']][:3]}"
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{label}: {serious}"


def emailed_code() -> str:
    return re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)


def sign_in(tab, email: str, password: str) -> None:
    """Password, then the code e-mailed to the patient (the live server shares the test's mailbox).

    Fields are found by name, not by label, so that the same steps work in French and in English.
    """
    tab.goto("/connexion/")
    tab.locator('input[name="email"]').fill(email)
    tab.locator('input[name="password"]').fill(password)
    tab.locator('main form button[type="submit"]').first.click()
    tab.locator('input[name="code"]').fill(emailed_code())
    tab.locator('main form button[type="submit"]:not([name="resend"])').first.click()
    tab.wait_for_url("**/espace/")


def step_up(tab, password: str) -> None:
    assert "/espace/confirmation/" in tab.url
    tab.get_by_label(re.compile(r"^Mot de passe")).fill(password)
    tab.get_by_role("button", name="Confirmer").click()


def test_bernard_activates_his_profile__L4(page, personas):
    bernard = personas.bernard
    _profile, code = profile_actions.do_reissue_provisional_code(bernard, actor=None)

    page.goto("/activer/")
    check_accessibility(page, "activation")
    screenshot(page, "patient-activation")
    page.get_by_label("Numéro de sécurité sociale (NIR)").fill(
        " ".join([bernard.nir[:1], bernard.nir[1:3], bernard.nir[3:]])
    )
    page.get_by_label("Code provisoire").fill(code.lower())
    page.get_by_label("Date de naissance").fill(bernard.birth_date.isoformat())
    page.get_by_label("Adresse électronique").fill("bernard.petit@courriel.example")
    page.get_by_label(re.compile(r"^Mot de passe")).fill(PASSWORD)
    page.get_by_label("Confirmez le mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Continuer").click()

    page.wait_for_url("**/activer/courriel/")
    assert mail.outbox[-1].to == ["bernard.petit@courriel.example"]
    page.get_by_label("Code reçu par courriel").fill(emailed_code())
    page.get_by_role("button", name="Valider").click()

    page.wait_for_url("**/activer/second-facteur/")
    check_accessibility(page, "second factor")
    screenshot(page, "patient-activation-second-factor")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.get_by_label("Code à 6 chiffres affiché par l'application").fill(f"{totp(key):06d}")
    page.get_by_role("button", name="Utiliser cette application").click()

    page.wait_for_url("**/activer/codes-de-secours/")
    assert page.locator(".backup-codes li").count() == 10
    page.get_by_role("link", name="J'ai noté mes codes, continuer").click()
    page.wait_for_url("**/espace/")
    assert page.locator("h1").inner_text() == "Bonjour Bernard"
    bernard.refresh_from_db()
    assert bernard.state == Profile.State.ACTIVE and bernard.email_verified
    check_accessibility(page, "dashboard")
    screenshot(page, "patient-dashboard")


def test_a_person_objects_in_time__L2(page, db):
    profile, code = profile_actions.do_enrol_profile(
        nir=make_nir("2950575114099"), birth_name="NOUVEL", first_names="Nina", birth_date=date(1995, 5, 17),
        sex="F", address_street="5 rue de la Paix", postal_code="75002", city="PARIS", actor=None,
    )  # fmt: skip
    page.goto("/opposition/")
    check_accessibility(page, "opposition")
    screenshot(page, "patient-opposition")
    page.get_by_label("Numéro de sécurité sociale (NIR)").fill(profile.nir)
    page.get_by_label("Code provisoire").fill(code)
    page.get_by_label("Date de naissance").fill("1995-05-17")
    page.get_by_role("button", name="Enregistrer mon opposition").click()
    page.wait_for_url("**/opposition/confirmation/")
    assert page.locator("h1").inner_text() == "Votre opposition est enregistrée"
    profile.refresh_from_db()
    assert profile.state == Profile.State.OPPOSED


def test_alice_masks_a_document_and_the_trail_and_the_practitioner_see_it__A4_T3(page, personas):
    alice = personas.alice
    bilan = Document.objects.get(profile=alice, title="Bilan sanguin annuel")
    assert bilan in visible_documents(personas.david, alice)
    sign_in(page, alice.email, personas.password)
    page.get_by_role("link", name="Documents", exact=True).click()
    check_accessibility(page, "documents")
    screenshot(page, "patient-documents")
    page.get_by_label("Sélectionner « Bilan sanguin annuel »").check()
    page.get_by_role("button", name="Masquer la sélection", exact=True).click()
    assert page.get_by_text("1 document masqué.").is_visible()
    assert bilan not in visible_documents(personas.david, alice)
    assert bilan in visible_documents(personas.claire, alice)  # author and treating doctor

    page.get_by_role("link", name="Bilan sanguin annuel").click()
    assert page.get_by_text("par votre médecin traitant, Dr Claire Dubois.").is_visible()
    check_accessibility(page, "document")
    screenshot(page, "patient-document")

    page.get_by_role("link", name="Historique des accès").click()
    page.get_by_role("link", name="Mes actions").click()  # the trail opens on the professionals' accesses
    assert page.get_by_text("Masquage d'un document : Bilan sanguin annuel").first.is_visible()
    check_accessibility(page, "trail")
    screenshot(page, "patient-trail")

    page.get_by_role("link", name="Avis", exact=True).click()
    check_accessibility(page, "notices")
    screenshot(page, "patient-notices")


def test_alice_blocks_dr_hugo_bernard_and_unblocks_him_after_the_step_up__A4_A5(page, personas):
    alice, hugo = personas.alice, personas.hugo
    access.do_unblock_practitioner(alice, hugo, actor=alice.user)  # start from an unblocked Dr Bernard
    sign_in(page, alice.email, personas.password)
    page.get_by_role("link", name="Qui peut voir mon dossier").click()
    page.get_by_label(re.compile(r"^Nom")).fill("Bernard")
    page.get_by_role("button", name="Rechercher").click()
    page.get_by_role("button", name="Bloquer Dr Hugo Bernard").click()
    assert page.get_by_text("Dr Hugo Bernard est bloqué").is_visible()
    assert find_profile(hugo, nir=alice.nir, birth_date=alice.birth_date) is None

    # A4: Dr David Lambert is given the treating doctor's rights from the directory, then loses them.
    page.get_by_label(re.compile(r"^Nom")).fill("Lambert")
    page.get_by_role("button", name="Rechercher").click()
    # Giving rights asks for the step-up re-check, then confirms the choice kept across it.
    page.get_by_role("button", name="Donner les droits de médecin traitant").click()
    page.wait_for_url("**/espace/confirmation/**")
    check_accessibility(page, "step-up")
    screenshot(page, "patient-step-up")
    step_up(page, personas.password)
    page.wait_for_url("**/confidentialite/droits-medecin-traitant/?**")
    assert page.get_by_role(
        "heading", name="Donner les droits de votre médecin traitant à Dr David Lambert ?"
    ).is_visible()
    check_accessibility(page, "step-up confirmation")
    page.get_by_role("button", name="Donner les droits de médecin traitant").click()
    assert page.get_by_text("Dr David Lambert a maintenant les droits de votre médecin traitant").is_visible()
    granted = page.locator('section[aria-labelledby="treating-rights-title"]')
    assert granted.get_by_text("Dr David Lambert").is_visible()
    assert TreatingRightsGrant.objects.filter(profile=alice, practitioner=personas.david).exists()
    check_accessibility(page, "privacy")
    screenshot(page, "patient-privacy")
    granted.get_by_role("button", name="Retirer les droits").click()
    assert page.get_by_text("Dr David Lambert n'a plus les droits de votre médecin traitant").is_visible()
    assert not TreatingRightsGrant.objects.filter(profile=alice).exists()

    page.get_by_role("link", name="Débloquer Dr Hugo Bernard").first.click()  # the re-check is still fresh
    page.wait_for_url(f"**/confidentialite/debloquer/{hugo.pk}/")
    page.get_by_role("button", name="Débloquer", exact=True).click()
    assert page.get_by_text("Dr Hugo Bernard n'est plus bloqué.").is_visible()
    assert find_profile(hugo, nir=alice.nir, birth_date=alice.birth_date) is not None


def test_alice_downloads_her_export(page, personas):
    alice = personas.alice
    sign_in(page, alice.email, personas.password)
    page.get_by_role("link", name="Mes données").click()
    check_accessibility(page, "my data")
    screenshot(page, "patient-my-data")
    page.get_by_role("link", name="Télécharger mes données (ZIP)").click()
    # The export asks for the re-check first; once confirmed, the download starts.
    page.wait_for_url("**/espace/confirmation/**")
    with page.expect_download() as download_info:
        step_up(page, personas.password)
    download = download_info.value
    assert download.suggested_filename.startswith("carnet-mes-donnees-")
    archive = zipfile.ZipFile(io.BytesIO(Path(download.path()).read_bytes()))
    index = json.loads(archive.read("index.json"))
    titles = {entry["title"] for entry in index["documents"]}
    assert {"Bilan sanguin annuel", "Synthèse psychiatrique", "Radio du genou (photo)"} <= titles
    radio = next(entry for entry in index["documents"] if entry["title"] == "Radio du genou (photo)")
    assert archive.read(radio["file"]).startswith(b"\x89PNG")
    assert "trail.csv" in archive.namelist()


def test_a_page_switched_to_english_stays_english(page, personas):
    page.goto("/connexion/")
    assert page.locator("html").get_attribute("lang") == "fr"
    check_accessibility(page, "sign-in")
    screenshot(page, "patient-sign-in")
    page.locator('button[name="language"][value="en"]').click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en"
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    assert cookies.get("django_language") == "en"
    for path in ("/opposition/", "/activer/", "/"):
        page.goto(path)
        assert page.locator("html").get_attribute("lang") == "en", path
    sign_in(page, personas.alice.email, personas.password)
    for path in ("/espace/", "/documents/", "/confidentialite/", "/trace/", "/avis/", "/mes-donnees/"):
        page.goto(path)
        assert page.locator("html").get_attribute("lang") == "en", path
    assert {c["name"]: c["value"] for c in page.context.cookies()}.get("django_language") == "en"
