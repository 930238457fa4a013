"""The practitioner portal in Debian's Chromium: the personas' stories of issue 6, screenshots for the notes.

Each practitioner signs in through the real pages with their password and a TOTP code computed from a
confirmed authenticator device (django_otp's own TOTP), as an authenticator app would.
"""

import re
from pathlib import Path

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from access_control.models import TrailEntry
from notifications.models import Notice
from records.identifiers import make_nir
from records.models import Document
from records.personas import DEMO_PASSWORD, minimal_pdf
from tests.browser import screenshot
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),  # before ``personas``: the seeds a previous flush removed
]

GENERIC = "Aucun dossier accessible ne correspond à ces informations."
UNKNOWN_NIR = make_nir("1850575114021")


@pytest.fixture
def csp_violations(page):
    """Console messages about the Content-Security-Policy: the portal must need no inline script or style."""
    seen = []
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    return seen


def sign_in(page, practitioner):
    device = TOTPDevice.objects.create(user=practitioner.user, name="Application", confirmed=True)
    page.goto("/pro/connexion/")
    page.fill("#id_identifier", practitioner.rpps)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/pro/connexion/verification/$"))
    code = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift).token()
    page.fill("#id_code", f"{code:06d}")
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/pro/$"))


def find(page, nir, birth_date, birth_name=""):
    page.click("nav.pro-nav >> text=Rechercher un patient")
    page.fill("#id_nir", nir)
    page.fill("#id_birth_date", birth_date.isoformat() if hasattr(birth_date, "isoformat") else birth_date)
    if birth_name:
        page.fill("#id_birth_name", birth_name)
    page.click("main form button[type=submit]")


def open_record(page, profile):
    find(page, profile.nir, profile.birth_date)
    expect(page.locator(".notice-statement")).to_contain_text("Le patient sera informé de cette consultation.")
    page.check("#id_attests_care_team")
    page.click("text=Ouvrir le dossier")
    expect(page).to_have_url(re.compile(r"/dossier/$"))


def document_titles(page) -> set[str]:
    return {title.strip() for title in page.locator("table.documents tbody td:nth-child(2) a").all_inner_texts()}


def test_lambert_opens_alices_record_and_a_lab_report__A1_A4_N1(page, personas, csp_violations):
    sign_in(page, personas.david)
    screenshot(page, "pro-home")
    find(page, personas.alice.nir, personas.alice.birth_date, "Martin")
    expect(page.locator(".patient-name")).to_have_text("Alice Marie MARTIN")
    assert personas.alice.nir not in page.url
    screenshot(page, "pro-patient")
    page.check("#id_attests_care_team")
    page.click("text=Ouvrir le dossier")
    expect(page.locator("h1")).to_have_text("Documents du dossier")
    titles = document_titles(page)
    assert "Bilan sanguin annuel" in titles and len(titles) == 7
    assert "Synthèse psychiatrique" not in page.content()  # A4: no row, no count, no filter option
    screenshot(page, "pro-record")
    with page.expect_response(re.compile(r"/pages/1/$")) as body:
        page.click("text=Bilan sanguin annuel")
    assert body.value.status == 200
    assert body.value.headers["content-type"] == "image/png"
    expect(page.locator("img.preview-page")).to_be_visible()
    screenshot(page, "pro-document")
    assert Notice.objects.filter(
        kind=Notice.Kind.CONSULTATION, profile=personas.alice, practitioner=personas.david
    ).exists()
    assert (
        TrailEntry.objects.filter(
            action="open_document", actor_practitioner=personas.david, profile=personas.alice, outcome="allowed"
        ).count()
        == 1
    )
    page.click("nav.pro-nav >> text=Mon activité")
    expect(page.locator("table.trail")).to_contain_text("Ouverture d'un document")
    screenshot(page, "pro-activity")
    assert csp_violations == []


def test_hugo_gets_the_same_answer_for_alice_as_for_an_unknown_nir_yet_deposits__A5_A10(
    page, personas, tmp_path, csp_violations
):
    sign_in(page, personas.hugo)
    find(page, personas.alice.nir, personas.alice.birth_date, "MARTIN")
    expect(page.locator(".refusal")).to_have_text(GENERIC)
    for_alice = page.locator("main").inner_text().replace(personas.alice.nir, "")
    screenshot(page, "pro-find-refused")
    find(page, UNKNOWN_NIR, personas.alice.birth_date, "MARTIN")
    expect(page.locator(".refusal")).to_have_text(GENERIC)
    assert page.locator("main").inner_text().replace(UNKNOWN_NIR, "") == for_alice

    page.click("nav.pro-nav >> text=Déposer un document")
    page.fill("#id_nir", personas.alice.nir)
    page.fill("#id_birth_date", personas.alice.birth_date.isoformat())
    page.fill("#id_birth_name", "MARTIN")
    page.select_option("#id_document_type", "11490-0")
    page.fill("#id_care_date", "2025-01-20")
    page.fill("#id_title", "Lettre de fin de remplacement")
    body = minimal_pdf("Lettre de liaison", ["Fin de remplacement."])
    page.set_input_files("#id_file", {"name": "lettre.pdf", "mimeType": "application/pdf", "buffer": body})
    screenshot(page, "pro-deposit")
    page.click("main form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Transmission enregistrée.")
    assert "MARTIN" not in page.locator("main").inner_text()
    document = Document.objects.get(title="Lettre de fin de remplacement")
    assert (document.profile_id, document.author_practitioner_id) == (personas.alice.pk, personas.hugo.pk)
    assert csp_violations == []


def test_emma_sees_only_her_matrix_types__A2(page, personas):
    sign_in(page, personas.emma)
    open_record(page, personas.alice)
    assert document_titles(page) == {
        "Bilan sanguin annuel",
        "Ordonnance — traitement de fond",
        "Vaccination antigrippale",
    }


def test_ines_uses_centre_15__A7(page, personas, csp_violations):
    sign_in(page, personas.ines)
    find(page, personas.bernard.nir, personas.bernard.birth_date)
    page.click("text=Accès en urgence")
    page.check("input[value=centre_15]")
    screenshot(page, "pro-emergency")
    page.click("main form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Confirmez l'accès en urgence")
    expect(page.locator(".consequences")).to_contain_text("le patient en est informé immédiatement")
    screenshot(page, "pro-emergency-confirm")
    page.click("text=Confirmer l'accès en urgence")
    expect(page.locator(".badge-emergency")).to_contain_text("Centre 15 (SAMU)")
    assert "Bilan lipidique" in document_titles(page)
    assert TrailEntry.objects.filter(
        action="open_record", mode="centre_15", outcome="allowed", actor_practitioner=personas.ines
    ).exists()
    assert Notice.objects.filter(kind=Notice.Kind.EMERGENCY, profile=personas.bernard).exists()
    screenshot(page, "pro-record-emergency")
    assert csp_violations == []


def test_emergency_access_to_etienne_is_refused__A7(page, personas):
    sign_in(page, personas.david)
    find(page, personas.etienne.nir, personas.etienne.birth_date)
    page.click("text=Accès en urgence")
    page.click("main form button[type=submit]")  # no justification
    expect(page.locator(".errorlist")).to_contain_text("L'accès en bris de glace exige une justification écrite.")
    page.fill("#id_justification", "Malaise dans la salle d'attente, patient inconscient.")
    page.click("main form button[type=submit]")
    page.click("text=Confirmer l'accès en urgence")
    expect(page.locator(".messages")).to_contain_text("Ce patient a refusé l'accès en urgence à son dossier")
    screenshot(page, "pro-emergency-refused")
    assert not Notice.objects.filter(kind=Notice.Kind.EMERGENCY, profile=personas.etienne).exists()


def test_claire_sees_the_masked_synthesis_and_alices_trail__A6_T3(page, personas):
    sign_in(page, personas.claire)
    open_record(page, personas.alice)
    masked = page.locator("table.documents tr", has_text="Synthèse psychiatrique")
    expect(masked.locator(".badge-masked")).to_have_text("Masqué par le patient")
    page.click("text=Trace des accès au dossier")
    expect(page.locator("h1")).to_have_text("Trace des accès au dossier")
    expect(page.locator("table.trail")).to_contain_text("Dr Claire Dubois")
    expect(page.locator("table.trail")).to_contain_text("Masquage d'un document")
    screenshot(page, "pro-trail")
    page.click("nav.pro-nav >> text=Mes patients")
    expect(page.locator("main table")).to_contain_text("Alice Marie MARTIN")
    screenshot(page, "pro-my-patients")


def test_julien_can_open_nothing__A3(page, personas):
    sign_in(page, personas.julien)
    for profile in (personas.alice, personas.bernard, personas.gerard):
        find(page, profile.nir, profile.birth_date)
        expect(page.locator(".refusal")).to_have_text(GENERIC)
    page.click("nav.pro-nav >> text=Mes patients")
    expect(page.locator("main")).to_contain_text("Aucun patient ne vous a déclaré comme médecin traitant.")
    assert not TrailEntry.objects.filter(actor_practitioner=personas.julien, outcome="allowed").exists()


# --- Accessibility and CSP ----------------------------------------------------------------------------------

AXE = Path(__file__).resolve().parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
INLINE_CODE = """() => ({
  scripts: document.querySelectorAll('script:not([src])').length,
  styles: document.querySelectorAll('style, [style]').length,
  handlers: [...document.querySelectorAll('*')].filter(el => [...el.attributes].some(a => a.name.startsWith('on'))).length,
})"""


@pytest.fixture
def axe_page(browser, live_server, settings):
    """A tab whose context lets axe-core be injected (``bypass_csp``); the pages' own CSP is checked apart."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    context = browser.new_context(
        base_url=live_server.url, locale="fr-FR", viewport={"width": 1024, "height": 768}, bypass_csp=True
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def check_accessibility(tab, label: str) -> None:
    """No inline script, style or handler (the CSP allows none), and no serious or critical axe-core violation
    of the WCAG 2.1 A/AA and best-practice rules."""
    assert tab.evaluate(INLINE_CODE) == {"scripts": 0, "styles": 0, "handlers": 0}, label
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


def test_portal_pages_are_accessible_on_a_tablet(axe_page, personas):
    tab = axe_page
    sign_in(tab, personas.claire)
    check_accessibility(tab, "home")
    find(tab, UNKNOWN_NIR, "1985-03-12")
    check_accessibility(tab, "find refused")
    find(tab, personas.alice.nir, personas.alice.birth_date)
    check_accessibility(tab, "patient")
    tab.click("text=Accès en urgence")
    check_accessibility(tab, "emergency")
    tab.fill("#id_justification", "Patiente inconsciente.")
    tab.click("main form button[type=submit]")
    check_accessibility(tab, "emergency confirmation")
    tab.click("text=Annuler")
    tab.click("text=Déposer un document >> nth=1")
    check_accessibility(tab, "deposit")
    tab.go_back()
    tab.check("#id_attests_care_team")
    tab.click("text=Ouvrir le dossier")
    check_accessibility(tab, "record")
    tab.click("text=Bilan sanguin annuel")
    check_accessibility(tab, "document")
    tab.click("text=« Retour au dossier")
    tab.click("text=Trace des accès au dossier")
    check_accessibility(tab, "trail")
    for name in ("Déposer un document", "Mes patients", "Mon activité"):
        tab.click(f"nav.pro-nav >> text={name}")
        check_accessibility(tab, name)
