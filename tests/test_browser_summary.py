"""Issue 18 items 2 and 3 in Chromium: documents previewed as page images, and the health summary.

Alice reads a real two-page PDF in her portal and Dr David Lambert reads it in his (pages drawn on the server,
no PDF plug-in); Alice fills in her health summary; Dr Inès Garnier opens Alice's record as SAMU regulator and
finds the summary first (A7). Each page is checked with axe-core (no serious or critical violation) and the
strict CSP, and photographed on a desktop (1366×768) and a phone (390×844) into docs/screenshots/.
"""

import io
import re

import pytest
from playwright.sync_api import expect

from access_control import actions as access
from access_control.models import TrailEntry
from tests import test_browser_portal as portal
from tests.browser import screenshot
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)
from tests.test_browser_portal import _clean_mailbox, check_accessibility, sign_in  # noqa: F401
from tests.test_browser_pro import find
from tests.test_browser_pro import sign_in as pro_sign_in
from tests.test_preview import weasy_pdf

page = portal.page  # inline axe-core allowed; the pages' own CSP is checked by check_accessibility

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
TITLE = "Compte rendu de consultation de cardiologie"


def both_sizes(tab, name: str, label: str) -> None:
    """axe-core and a screenshot on the desktop, then on the phone (the page reloaded: axe leaves its script)."""
    tab.set_viewport_size(DESKTOP)
    check_accessibility(tab, label)
    screenshot(tab, name)
    tab.set_viewport_size(PHONE)
    tab.reload()
    tab.wait_for_function("() => [...document.querySelectorAll('img.preview-page')].slice(0, 1).every(i => i.complete)")
    check_accessibility(tab, f"{label}, phone")
    screenshot(tab, f"{name}-phone")
    tab.set_viewport_size(DESKTOP)


def drawn_pages(tab) -> list[int]:
    """The natural widths of the page images loaded so far (0 for one not loaded or broken)."""
    return tab.evaluate("() => [...document.querySelectorAll('img.preview-page')].map(img => img.naturalWidth)")


@pytest.fixture
def cardiology_report(personas):
    return access.do_deposit_document(
        personas.alice, actor=personas.david, fileobj=io.BytesIO(weasy_pdf(TITLE, pages=2)),
        document_type="11488-4", title=TITLE,
    )  # fmt: skip


def test_alice_reads_a_pdf_in_the_page_without_a_plug_in__T1(page, personas, cardiology_report):
    page.set_viewport_size(DESKTOP)
    sign_in(page, personas.alice.email, personas.password)
    page.get_by_role("link", name="Documents", exact=True).click()
    page.get_by_role("link", name=TITLE).click()
    first = page.get_by_role("img", name=f"{TITLE}, page 1 sur 2")
    expect(first).to_be_visible()
    page.wait_for_function("() => document.querySelector('img.preview-page').naturalWidth > 0")
    assert page.locator("iframe, embed, object").count() == 0
    page.get_by_role("img", name=f"{TITLE}, page 2 sur 2").scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('img.preview-page')].every(i => i.naturalWidth > 0)")
    assert drawn_pages(page) == [1240, 1240]
    expect(page.get_by_role("link", name="Télécharger", exact=True)).to_be_visible()
    views = TrailEntry.objects.filter(profile=personas.alice, document_id=cardiology_report.pk, action="open_document")
    assert views.count() == 1  # the page and both images: one viewing
    page.evaluate("() => window.scrollTo(0, 0)")
    both_sizes(page, "patient-document-preview", "patient document preview")


def test_lambert_reads_the_same_pdf_as_page_images__T1(page, personas, cardiology_report):
    page.set_viewport_size(DESKTOP)
    pro_sign_in(page, personas.david)
    find(page, personas.alice.nir, personas.alice.birth_date)
    page.check("#id_attests_care_team")
    page.click("text=Ouvrir le dossier")
    page.get_by_role("link", name=TITLE).click()
    expect(page.get_by_role("img", name=f"{TITLE}, page 1 sur 2")).to_be_visible()
    page.wait_for_function("() => document.querySelector('img.preview-page').naturalWidth > 0")
    assert drawn_pages(page)[0] == 1240
    opened = TrailEntry.objects.filter(
        actor_practitioner=personas.david, document_id=cardiology_report.pk, action="open_document"
    )
    assert opened.count() == 1
    both_sizes(page, "pro-document-preview", "practitioner document preview")


def test_alice_fills_in_her_summary_and_the_samu_sees_it_first__A7(page, personas):
    page.set_viewport_size(DESKTOP)
    sign_in(page, personas.alice.email, personas.password)
    page.get_by_role("link", name="Profil médical", exact=True).click()
    expect(page.get_by_role("heading", name="Profil médical", level=1)).to_be_visible()
    allergies = page.locator("#part-allergy")
    allergies.get_by_text("Ajouter une allergie").click()  # the form opens under its part
    allergies.get_by_label("Substance, aliment ou médicament").fill("Pénicilline")
    allergies.get_by_label("Réaction (facultatif)").fill("urticaire géant")
    allergies.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#part-allergy .summary-list")).to_contain_text("Pénicilline")
    treatments = page.locator("#part-treatment")
    treatments.get_by_text("Ajouter un traitement").click()
    treatments.get_by_label("Médicament ou traitement").fill("Lévothyrox 75 µg")
    treatments.get_by_label("Posologie (facultatif)").fill("1 comprimé le matin")
    treatments.get_by_role("button", name="Enregistrer").click()
    contacts = page.locator("#part-emergency_contact")
    contacts.get_by_text("Ajouter une personne à prévenir").click()
    contacts.get_by_label("Nom et prénom").fill("Paul Martin")
    contacts.get_by_label(re.compile("^Lien")).fill("conjoint")
    contacts.get_by_label("Téléphone").fill("07 00 00 00 00 00")  # too long: refused, explained, nothing saved
    contacts.get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#part-emergency_contact [role=alert]")).to_contain_text("numéro de téléphone valide")
    page.locator("#part-emergency_contact").get_by_label("Téléphone").fill("06 12 34 56 78")
    page.locator("#part-emergency_contact").get_by_role("button", name="Enregistrer").click()
    expect(page.locator("#part-emergency_contact .summary-list")).to_contain_text("06 12 34 56 78")
    page.evaluate("() => window.scrollTo(0, 0)")
    both_sizes(page, "patient-health-summary", "health summary")
    page.get_by_role("button", name="Se déconnecter").click()

    pro_sign_in(page, personas.ines)
    find(page, personas.alice.nir, personas.alice.birth_date)
    page.click("text=Accès en urgence")
    page.check("input[value=centre_15]")
    page.click("main form button[type=submit]")
    page.click("text=Confirmer l'accès en urgence")
    summary = page.locator("section.health-summary")
    expect(summary).to_contain_text("Pénicilline — urticaire géant")
    expect(summary).to_contain_text("Paul Martin — conjoint")
    documents = page.get_by_role("heading", name="Documents du dossier")
    assert summary.bounding_box()["y"] < documents.bounding_box()["y"]  # first, as a regulator needs it
    both_sizes(page, "pro-record-emergency-summary", "emergency record with the summary")
    read = TrailEntry.objects.get(action="open_health_summary", actor_practitioner=personas.ines)
    assert read.mode == "centre_15" and read.profile_id == personas.alice.pk
