"""Issue 18 in Chromium: finding a document, the notification centre and the trail's tabs, desktop and phone.

Each page is checked with axe-core (no serious or critical violation) and photographed into
docs/screenshots/patient-search*.png, patient-notification-centre*.png and patient-trail-tabs.png.
"""

import re

import pytest
from django.db import connection

from access_control.api import open_record
from access_control.models import AccessMode
from tests import test_browser_portal as portal
from tests.browser import screenshot
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)
from tests.test_browser_portal import _clean_mailbox, check_accessibility, sign_in  # noqa: F401

page = portal.page  # the portal walk's page fixture (inline axe-core allowed, CSP checked by check_accessibility)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("reference_data"),
]

PHONE = {"width": 390, "height": 844}


def test_alice_finds_a_document_by_a_word_without_its_accents(page, personas):
    if connection.vendor != "postgresql":
        pytest.skip("Accent folding is PostgreSQL's (SQLite's fallback is a plain contains)")
    sign_in(page, personas.alice.email, personas.password)
    page.get_by_role("link", name="Documents", exact=True).click()
    page.get_by_label("Rechercher").fill("reeducation")
    page.get_by_role("button", name="Filtrer").click()
    assert page.get_by_role("link", name="Prescription de rééducation du genou").is_visible()
    assert page.get_by_role("link", name="Bilan sanguin annuel").count() == 0
    assert page.get_by_label("Rechercher").input_value() == "reeducation"
    check_accessibility(page, "search")
    screenshot(page, "patient-search")
    page.set_viewport_size(PHONE)
    screenshot(page, "patient-search-phone")


def test_alice_reads_her_notifications_and_the_count_goes_down__N1(page, personas):
    assert open_record(personas.ines, personas.alice, mode=AccessMode.CENTRE_15).allowed
    sign_in(page, personas.alice.email, personas.password)
    centre = page.get_by_role("link", name=re.compile(r"^Notifications"))
    before = int(centre.locator(".badge.count").inner_text().split()[0])
    centre.click()
    assert page.get_by_role("heading", name="Notifications").is_visible()
    assert page.locator("li.unread").count() == before
    check_accessibility(page, "notification centre")
    screenshot(page, "patient-notification-centre")
    page.get_by_role("link", name=re.compile("Vaccination antigrippale")).click()
    assert page.get_by_role("heading", name="Vaccination antigrippale").is_visible()
    page.get_by_role("link", name=re.compile(r"^Notifications")).click()
    assert page.locator("li.unread").count() == before - 1
    assert page.locator(".centre-link .badge.count").inner_text().split()[0] == str(before - 1)
    page.set_viewport_size(PHONE)
    check_accessibility(page, "notification centre, phone")
    screenshot(page, "patient-notification-centre-phone")
    page.get_by_role("button", name="Tout marquer comme lu").click()
    assert page.locator("li.unread").count() == 0
    assert page.locator(".centre-link .badge.count").count() == 0


def test_the_trail_opens_on_the_professionals_accesses__T3(page, personas):
    assert open_record(personas.david, personas.alice).allowed
    sign_in(page, personas.alice.email, personas.password)
    page.get_by_role("link", name="Historique des accès", exact=True).click()
    tabs = page.get_by_role("navigation", name="Parties de l’historique")
    assert tabs.get_by_role("link", name="Accès des professionnels").get_attribute("aria-current") == "page"
    assert page.get_by_text("Dr David Lambert").first.is_visible()
    assert page.get_by_text("Masquage d'un document").count() == 0
    check_accessibility(page, "trail tabs")
    screenshot(page, "patient-trail-tabs")
    tabs.get_by_role("link", name="Mes actions").click()
    assert page.get_by_text("Masquage d'un document").first.is_visible()
