"""Find a document (issue 18, item 1): free-text search in the patient's list and the practitioner's record.

The search narrows what the door lets through (A2, A4, A6, A8, A9), folds accents on PostgreSQL, reads dates,
and is part of the consultation: it adds no trail entry and no notice (T1, N1).
"""

import datetime
import io
import re
from html import unescape

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import Q
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from access_control import actions as access
from access_control.api import documents_visible_to_patient
from access_control.models import TrailEntry
from notifications.models import Notice
from records import search
from records.models import Document
from records.personas import minimal_pdf
from tests.portal_fixtures import _fresh_cache, signed_in, text, url  # noqa: F401
from tests.pro_fixtures import open_record
from tests.pro_fixtures import signed_in as pro_signed_in
from tests.test_pro_portal import QUERIES_RECORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def _patient_titles(response) -> set[str]:
    return set(re.findall(r'/documents/\d+/">([^<]+)</a>', unescape(response.content.decode())))


def _pro_titles(response) -> set[str]:
    return set(re.findall(r'/documents/\d+/">([^<]+)</a>', unescape(response.content.decode())))


def _patient_search(client, words):
    return _patient_titles(client.get(url("documents"), {"q": words}))


# --- The patient's list ----------------------------------------------------------------------------------


def test_patient_finds_by_title_type_author_and_accents(client, personas):
    if connection.vendor != "postgresql":
        pytest.skip("Accent folding and stemming are PostgreSQL's (SQLite's fallback is a plain contains)")
    signed_in(client, personas.alice)
    assert _patient_search(client, "reeducation") == {"Prescription de rééducation du genou"}  # accents folded
    assert _patient_search(client, "RÉÉDUC") == {"Prescription de rééducation du genou"}  # prefix, any case
    assert _patient_search(client, "kinésithérapie") == {"Prescription de rééducation du genou"}  # the type
    assert _patient_search(client, "immunisation") == {"Vaccination antigrippale"}  # the type, in English
    assert _patient_search(client, "girard") == {"Vaccination antigrippale"}  # the author
    assert _patient_search(client, "lambert consultation") == {"Consultation de cardiologie"}  # every word
    assert _patient_search(client, "vaccinations") == {"Vaccination antigrippale"}  # French stemming
    assert _patient_search(client, "scanner") == set()
    assert "Aucun document ne correspond." in text(client.get(url("documents"), {"q": "scanner"}))


def test_patient_finds_by_care_date(client, personas):
    signed_in(client, personas.alice)
    bilan = Document.objects.get(profile=personas.alice, title="Bilan sanguin annuel")
    Document.objects.filter(pk=bilan.pk).update(care_date=datetime.date(2019, 3, 14))
    assert _patient_search(client, "2019") == {"Bilan sanguin annuel"}
    assert _patient_search(client, "mars 2019") == {"Bilan sanguin annuel"}
    assert _patient_search(client, "03/2019") == {"Bilan sanguin annuel"}
    assert _patient_search(client, "14/03/2019") == {"Bilan sanguin annuel"}
    assert _patient_search(client, "2019-03-14 sanguin") == {"Bilan sanguin annuel"}
    assert _patient_search(client, "15/03/2019") == set()
    assert _patient_search(client, "31/02/2019") == set()  # date-shaped, no such day: nothing, no error
    assert "Bilan sanguin annuel" not in _patient_search(client, str(timezone.localdate().year))


def test_patient_search_never_reaches_held_or_secret_documents__A8_A9(client, personas):
    access.do_deposit_document(
        personas.alice, actor=personas.david, fileobj=io.BytesIO(minimal_pdf("IRM", ["x"])),
        document_type="11488-4", title="Résultat d'IRM à annoncer", hold=True,
    )  # fmt: skip
    signed_in(client, personas.alice)
    assert _patient_search(client, "IRM") == set()  # A8: on hold
    assert "Consultation confidentielle" in Document.objects.filter(profile=personas.fanny).values_list(
        "title", flat=True
    )
    secret = search.matching(documents_visible_to_patient(personas.alice_user, personas.fanny), "confidentielle")
    assert list(secret) == []  # A9: Alice represents Fanny but does not see the minor's secret


@pytest.mark.parametrize("words", ["a & b | !c", "(vaccin:*", "' OR 1=1 --", "\\x00", "é" * 500, "<script>"])
def test_odd_search_text_is_harmless(client, personas, words):
    signed_in(client, personas.alice)
    page = client.get(url("documents"), {"q": words})
    assert page.status_code == 200


def test_patient_search_keeps_the_pinned_queries(client, personas, django_assert_num_queries):
    signed_in(client, personas.alice)
    client.get(url("documents"))  # warm the session and the caches
    # The cast's documents are dated weeks back (issue 18): the flu shot's own year, not necessarily this one.
    year = Document.objects.get(profile=personas.alice, title="Vaccination antigrippale").care_date.year
    with django_assert_num_queries(14):  # as the plain list (test_portal_documents)
        page = client.get(url("documents"), {"q": f"vaccin girard {year}"})
    assert _patient_titles(page) == {"Vaccination antigrippale"}


def test_patient_search_adds_no_trail_entry_and_no_notice__T1_N1(client, personas):
    signed_in(client, personas.alice)
    client.get(url("documents"))
    entries, notices = TrailEntry.objects.count(), Notice.objects.count()
    assert _patient_search(client, "genou") == {"Prescription de rééducation du genou", "Radio du genou (photo)"}
    assert (TrailEntry.objects.count(), Notice.objects.count()) == (entries, notices)


def test_the_sqlite_fallback_matches_words_by_containment(personas, monkeypatch):
    visible = documents_visible_to_patient(personas.alice_user, personas.alice)
    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert {d.title for d in search.matching(visible, "genou Dubois")} == {"Prescription de rééducation du genou"}
    assert {d.title for d in search.matching(visible, "Vaccin")} == {"Vaccination antigrippale"}


def test_parse_separates_dates_from_words():
    dates, words = search.parse("écho 12/03/2023 Dr Lefèvre, juillet")
    assert words == ["écho", "Dr", "Lefèvre"]
    assert dates == Q(care_date=datetime.date(2023, 3, 12)) & Q(care_date__month=7)
    assert search.parse("")[1] == [] and not search.parse("   ")[0]
    assert len(search.parse(" ".join(["mot"] * 50))[1]) == search.MAX_WORDS


# --- The practitioner's record ---------------------------------------------------------------------------


def _pro_search(client, token, words):
    return _pro_titles(client.get(reverse("practitioners:record", args=[token]), {"q": words}))


def test_practitioner_search_respects_the_masks__A4_A6(personas):
    david = pro_signed_in(Client(), personas.david)
    token = open_record(david, personas.alice)
    assert _pro_search(david, token, "psychiatrique") == set()  # A4: masked, not even findable
    assert _pro_search(david, token, "cardiologie") == {"Consultation de cardiologie"}
    claire = pro_signed_in(Client(), personas.claire)
    token = open_record(claire, personas.alice)
    assert _pro_search(claire, token, "psychiatrique") == {"Synthèse psychiatrique"}  # A6: treating doctor


def test_practitioner_search_stays_inside_the_matrix__A2(personas):
    emma = pro_signed_in(Client(), personas.emma)
    token = open_record(emma, personas.alice)
    assert _pro_search(emma, token, "genou") == set()  # a physiotherapy prescription: not for a pharmacist
    assert _pro_search(emma, token, "antigrippale") == {"Vaccination antigrippale"}


def test_practitioner_search_adds_no_trail_entry_and_no_notice__T1_N1(personas, django_assert_num_queries):
    if connection.vendor != "postgresql":
        pytest.skip("The query's words are folded and stemmed on PostgreSQL only; the pin counts a match")
    claire = pro_signed_in(Client(), personas.claire)
    token = open_record(claire, personas.alice)
    record = reverse("practitioners:record", args=[token])
    claire.get(record)  # warm the session
    entries, notices = TrailEntry.objects.count(), Notice.objects.count()
    with django_assert_num_queries(QUERIES_RECORD):  # as the plain record page
        response = claire.get(record, {"q": "reeducation genou"})
    assert _pro_titles(response) == {"Prescription de rééducation du genou"}
    assert "reeducation genou" in response.content.decode()  # the box keeps the words
    assert (TrailEntry.objects.count(), Notice.objects.count()) == (entries, notices)
