"""Issue 18 items 5-7 in Chromium: charts, the polish from the walk and the practitioner's recent patients.

Each page is walked at 1366×768 (a laptop) and 390×844 (a phone), checked with axe-core (no serious or critical
violation, WCAG 2.1 AA contrast included) and photographed into docs/screenshots/polish-*.png.
"""

import re

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from access_control.api import open_record
from access_control.models import AccessMode
from notifications.models import PrintBatch
from records import actions as profile_actions
from records.identifiers import mask_nir
from tests import test_browser_portal as portal
from tests.admin_fixtures import make_staff_member
from tests.browser import screenshot
from tests.lifecycle_fixtures import enrol
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)
from tests.signin_fixtures import verified_client
from tests.test_browser_portal import _clean_mailbox, check_accessibility, sign_in  # noqa: F401
from tests.test_browser_pro import sign_in as pro_sign_in

page = portal.page  # the portal walk's page fixture (axe-core injectable, the pages' CSP checked apart)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}

ONE_ROW = """(selector) => {
  const items = [...document.querySelectorAll(selector)];
  return new Set(items.map(item => Math.round(item.getBoundingClientRect().top))).size;
}"""
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def _consultations(personas):
    assert open_record(personas.david, personas.alice).allowed
    assert open_record(personas.emma, personas.alice).allowed
    assert open_record(personas.ines, personas.alice, mode=AccessMode.CENTRE_15).allowed


def _staff_session(page, live_server, user):
    """Sign ``user`` in with the second factor done (tests.signin_fixtures) and hand the session to the browser."""
    client = verified_client(Client(), user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


def test_the_patient_tabs_stay_on_one_row_and_the_trail_filters_line_up(page, personas):
    _consultations(personas)
    page.set_viewport_size(DESKTOP)
    sign_in(page, personas.alice.email, personas.password)
    assert page.evaluate(ONE_ROW, ".portal-nav li") == 1  # no wrap at 1366 px
    # ...and every tab in sight, none hidden behind a sideways scroll
    assert page.locator(".portal-nav ul").evaluate("(ul) => ul.scrollWidth - ul.clientWidth") <= 0
    page.get_by_role("link", name="Historique des accès", exact=True).click()
    assert page.evaluate(ONE_ROW, ".tabs li") == 1
    bottoms = page.evaluate(
        "() => [...document.querySelectorAll('form.filters select, form.filters input[type=date],"
        " form.filters button')].map(el => Math.round(el.getBoundingClientRect().bottom))"
    )
    assert len(set(bottoms)) == 1, bottoms  # the filter row's fields and button on one line
    check_accessibility(page, "trail, desktop")
    screenshot(page, "polish-trail-desktop")

    page.set_viewport_size(PHONE)
    page.reload()
    assert page.evaluate(OVERFLOW) <= 0  # nothing sticks out of the phone's screen
    assert page.evaluate(ONE_ROW, ".portal-nav li") == 1  # one row that scrolls sideways, not four
    nav = page.locator(".portal-nav ul")
    assert nav.evaluate("(ul) => ul.scrollWidth > ul.clientWidth && getComputedStyle(ul).overflowX === 'auto'")
    select = page.locator("#profile-switch").bounding_box()
    assert select["x"] >= 0 and select["x"] + select["width"] <= PHONE["width"]  # the profile selector fits
    header = page.locator(".site-header").bounding_box()
    assert header["height"] < 160
    for button in page.locator(".site-header button").all():
        box = button.bounding_box()
        assert box["height"] >= 24 and box["x"] + box["width"] <= PHONE["width"]  # tappable, on screen
    check_accessibility(page, "trail, phone")
    screenshot(page, "polish-trail-phone")


def test_the_text_size_is_remembered_and_keeps_the_contrast(page, personas):
    page.set_viewport_size(DESKTOP)
    sign_in(page, personas.alice.email, personas.password)
    assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "16px"
    page.get_by_role("button", name="A++ Texte très grand").click()
    expect(page.locator("html")).to_have_class("text-larger")
    assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "20px"
    page.get_by_role("link", name="Documents", exact=True).click()  # another page: still larger
    expect(page.locator("html")).to_have_class("text-larger")
    assert page.get_by_role("button", name="A++ Texte très grand").get_attribute("aria-pressed") == "true"
    assert page.evaluate(ONE_ROW, ".portal-nav li") == 1
    check_accessibility(page, "documents, larger text")  # colour-contrast is a wcag2aa rule
    screenshot(page, "polish-text-larger")
    page.set_viewport_size(PHONE)
    assert page.evaluate(OVERFLOW) <= 0
    screenshot(page, "polish-text-larger-phone")
    page.get_by_role("button", name="A Texte de taille normale").click()
    assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "16px"


def test_the_patient_sees_their_accesses_in_charts_with_emergencies_apart__T3(page, personas):
    _consultations(personas)
    page.set_viewport_size(DESKTOP)
    sign_in(page, personas.alice.email, personas.password)
    page.get_by_role("link", name="Historique des accès", exact=True).click()
    page.get_by_role("link", name="En graphiques").click()
    expect(page.locator("canvas[data-chart]")).to_have_count(3)
    for canvas in page.locator("canvas[data-chart]").all():
        expect(canvas).to_have_attribute("data-drawn", re.compile(r"^\d+$"))  # Chart.js drew it
        assert canvas.bounding_box()["height"] > 100
    assert "1 consultation en urgence" in page.locator(".emergency-note").inner_text()
    page.locator("#accesses-per-mode-title").scroll_into_view_if_needed()
    page.locator("figure:has(#accesses-per-mode-title) summary").click()
    table = page.locator("figure:has(#accesses-per-mode-title) table")
    expect(table.get_by_role("row", name=re.compile(r"Centre 15 \(SAMU\) 1"))).to_be_visible()
    check_accessibility(page, "charts, desktop")
    screenshot(page, "polish-patient-charts")
    page.set_viewport_size(PHONE)
    page.reload()
    assert page.evaluate(OVERFLOW) <= 0
    check_accessibility(page, "charts, phone")
    screenshot(page, "polish-patient-charts-phone")


def test_the_patient_sees_their_nir_partly_masked(page, personas):
    page.set_viewport_size(DESKTOP)
    sign_in(page, personas.alice.email, personas.password)
    page.get_by_role("link", name="Mes données", exact=True).click()
    shown = page.locator("[data-nir-masked]").inner_text()
    assert shown == mask_nir(personas.alice.nir) and personas.alice.nir not in page.content()
    check_accessibility(page, "my data")
    screenshot(page, "polish-profile-nir")
    page.set_viewport_size(PHONE)
    assert page.evaluate(OVERFLOW) <= 0
    screenshot(page, "polish-profile-nir-phone")


def test_staff_see_charts_labels_and_an_early_code_check__A7_A13_L2(page, personas, live_server):
    karim = make_staff_member("karim.graphiques", "Superviseurs", first_name="Karim", last_name="Benali")
    assert open_record(personas.ines, personas.alice, mode=AccessMode.CENTRE_15).allowed
    PrintBatch.objects.create(day=timezone.localdate(), letter_count=4, page_count=5)
    _staff_session(page, live_server, karim)
    page.set_viewport_size(DESKTOP)
    page.goto("/admin/")
    page.get_by_role("link", name="Graphiques : avis, lettres, accès en urgence").click()
    expect(page.locator("canvas[data-chart]")).to_have_count(3)
    for canvas in page.locator("canvas[data-chart]").all():
        expect(canvas).to_have_attribute("data-drawn", re.compile(r"^\d+$"))
    check_accessibility(page, "staff charts")
    screenshot(page, "polish-admin-charts")
    page.set_viewport_size(PHONE)
    page.reload()  # the phone's own layout, as a phone would load it
    assert page.evaluate(OVERFLOW) <= 0
    screenshot(page, "polish-admin-charts-phone")

    page.set_viewport_size(DESKTOP)
    page.get_by_role("link", name="Rapport de curiosité (avec son graphique)").click()
    page.goto(page.url + "?min_openings=1&min_ratio=1")
    expect(page.locator("canvas[data-chart='curiosity-data']")).to_have_attribute("data-drawn", "3")
    check_accessibility(page, "curiosity report")
    screenshot(page, "polish-admin-curiosity")

    # The opposition form checks the code first, and speaks to staff.
    profile, _code = enrol()
    profile_actions.do_reissue_provisional_code(profile, actor=None)
    page.goto(f"/admin/records/profile/{profile.pk}/desk/opposition/")
    page.get_by_label("La personne donne le code provisoire de sa notice").check()
    page.locator("#id_provisional_code").fill("ABCDEFGHJK")
    page.get_by_role("button", name="Continuer").click()
    expect(page.locator(".errorlist")).to_contain_text("ne correspond pas au profil de la personne")
    assert page.get_by_text("Confirmez l'opération").count() == 0 and "votre profil" not in page.content()
    check_accessibility(page, "opposition refused")
    screenshot(page, "polish-admin-opposition")
    page.goto(f"/admin/records/profile/{profile.pk}/")
    expect(page.get_by_role("cell", name="Nouveau code provisoire")).to_be_visible()
    assert "provisional_code_reissued" not in page.locator("#content-main").inner_text()
    check_accessibility(page, "desk")
    screenshot(page, "polish-admin-desk")


def test_the_practitioner_reopens_a_recent_patient_through_the_attestation__A1_T3(page, personas):
    assert open_record(personas.david, personas.bernard).allowed
    assert open_record(personas.david, personas.alice).allowed
    page.set_viewport_size(DESKTOP)
    pro_sign_in(page, personas.david)
    recent = page.locator(".recent-patients button")
    expect(recent).to_have_count(2)
    assert recent.first.inner_text() == personas.alice.display_name  # the latest first
    check_accessibility(page, "pro home")
    screenshot(page, "polish-pro-home")
    page.set_viewport_size(PHONE)
    assert page.evaluate(OVERFLOW) <= 0
    assert page.evaluate(ONE_ROW, ".pro-nav a") == 1  # the practitioner's menu scrolls sideways on a phone
    screenshot(page, "polish-pro-home-phone")
    recent.first.click()
    expect(page.get_by_label(re.compile("équipe de soins"))).to_be_visible()  # the attestation, again
    page.get_by_label(re.compile("équipe de soins")).check()
    page.get_by_role("button", name="Ouvrir le dossier").click()
    expect(page).to_have_url(re.compile(r"/dossier/$"))


def test_the_charts_draw_under_the_strict_csp_with_no_violation(browser, live_server, personas, settings):
    """No bypass here: the page's own policy (script-src 'self', style-src 'self') applies, and nothing breaks it."""
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    _consultations(personas)
    context = browser.new_context(base_url=live_server.url, locale="fr-FR", viewport=DESKTOP)
    tab = context.new_page()
    violations = []
    tab.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    try:
        sign_in(tab, personas.alice.email, personas.password)
        tab.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => console.log('Content Security Policy: ' + e.violatedDirective))"
        )
        tab.goto("/trace/graphiques/")
        for canvas in tab.locator("canvas[data-chart]").all():
            expect(canvas).to_have_attribute("data-drawn", re.compile(r"^\d+$"))
        assert violations == []
    finally:
        context.close()
