"""The trail as the patient sees it (T3) and the notices (N1, N2, N7): names and professions, emergency
highlighted, filters, CSV; preferences and the letters' PDFs."""

import csv
import io

import pytest

from access_control.api import open_record
from access_control.models import AccessMode, TrailEntry
from notifications.delivery import deliver
from notifications.models import Letter, Notice
from records.account_actions import do_set_notice_preferences
from records.models import Profile
from tests.portal_fixtures import _fresh_cache, signed_in, stepped_up, text, url  # noqa: F401

pytestmark = pytest.mark.django_db


def _consultations(personas):
    alice = personas.alice
    assert open_record(personas.david, alice).allowed
    assert open_record(personas.ines, alice, mode=AccessMode.CENTRE_15).allowed
    assert open_record(personas.emma, alice).allowed


def test_trail_names_the_practitioner_and_highlights_emergencies__T3(client, personas, django_assert_num_queries):
    _consultations(personas)
    signed_in(client, personas.alice)
    client.get(url("trail"))
    with django_assert_num_queries(12):
        page = client.get(url("trail") + "?who=")  # the "Tout" tab
    content = text(page)
    assert "Dr David Lambert" in content and "Médecin" in content
    assert "Emma Girard" in content and "Pharmacien" in content
    assert 'class="emergency"' in content and "Urgence — Centre 15 (SAMU)" in content
    assert "Blocage d'un professionnel : Dr Hugo Bernard" in content  # the target practitioner is named
    assert "Masquage d'un document : Synthèse psychiatrique" in content
    # More entries, the same number of queries (one page).
    for _ in range(60):
        open_record(personas.claire, personas.alice)
    with django_assert_num_queries(12):
        page = client.get(url("trail") + "?who=&page=2")
    assert "Page 2 sur" in text(page)


def test_trail_filters_by_who_emergency_and_date__T3(client, personas):
    _consultations(personas)
    signed_in(client, personas.alice)
    content = text(client.get(url("trail") + "?emergency=on"))
    assert "Inès Garnier" in content and "Dr David Lambert" not in content
    content = text(client.get(url("trail") + "?who=practitioners"))
    assert "Dr David Lambert" in content and "Masquage d'un document" not in content
    content = text(client.get(url("trail") + "?who=mine"))
    assert "Masquage d'un document" in content and "Consultation du dossier" not in content
    content = text(client.get(url("trail") + "?date_to=2000-01-01"))
    assert "Aucune action ne correspond." in content


def test_trail_csv_has_every_entry_with_names__T3(client, personas):
    _consultations(personas)
    signed_in(client, personas.alice)
    response = client.get(url("trail_csv") + "?who=practitioners")
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert rows[0][:3] == ["Date", "Qui", "Profession"]
    names = {row[1] for row in rows[1:]}
    assert {"Dr David Lambert", "Dr Inès Garnier", "Emma Girard"} <= names
    assert any(row[5] == "Centre 15 (SAMU)" for row in rows[1:])
    expected = TrailEntry.objects.filter(profile=personas.alice, actor_kind="practitioner").count()
    assert len(rows) - 1 == expected


def test_the_trails_profession_snapshot_reads_in_the_pages_language__T1_T3(client, personas, settings):
    """The entry keeps the profession in French (a hashed snapshot); English pages show the English label."""
    _consultations(personas)
    signed_in(client, personas.alice)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = text(client.get(url("trail") + "?who=practitioners"))
    assert "Emma Girard" in page and "Pharmacist" in page and "Pharmacien" not in page
    body = b"".join(client.get(url("trail_csv") + "?who=practitioners").streaming_content).decode("utf-8-sig")
    professions = {row[2] for row in list(csv.reader(io.StringIO(body), delimiter=";"))[1:]}
    assert "Pharmacist" in professions and "Pharmacien" not in professions
    assert TrailEntry.objects.filter(actor_practitioner=personas.emma, actor_profession="Pharmacien").exists()

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    assert "Pharmacien" in text(client.get(url("trail") + "?who=practitioners"))


def test_notice_preferences_say_consultation_notices_cannot_be_turned_off__N1_N2(client, personas):
    alice = personas.alice
    signed_in(client, alice)
    stepped_up(client)  # a channel change asks for the re-check (test_portal_privacy)
    page = text(client.get(url("notices")))
    assert "ne peuvent pas être désactivés" in page
    client.post(url("notice_preferences"), {"channel": "post", "new_document_notices": "on"})
    alice.refresh_from_db()
    assert alice.preferred_channel == Profile.Channel.POST and alice.new_document_notices
    client.post(url("notice_preferences"), {"channel": "email"})
    alice.refresh_from_db()
    assert alice.preferred_channel == Profile.Channel.EMAIL and not alice.new_document_notices
    assert TrailEntry.objects.filter(profile=alice, action="notice_preferences").count() == 2


def test_email_notices_need_a_verified_address__N2(client, personas):
    alice = personas.alice
    Profile.objects.filter(pk=alice.pk).update(email_verified=False, preferred_channel="post")
    signed_in(client, alice)
    page = text(client.get(url("notices")))
    assert "vérifiez d'abord votre adresse électronique" in page
    response = client.post(url("notice_preferences"), {"channel": "email"}, follow=True)
    assert "qu'à une adresse vérifiée" in text(response)
    alice.refresh_from_db()
    assert alice.preferred_channel == Profile.Channel.POST


def test_notice_history_lists_letters_with_their_pdf__N4_N7(client, personas, django_assert_num_queries):
    alice = personas.alice
    do_set_notice_preferences(alice, channel="post", new_document_notices=False, actor=alice.user)
    assert open_record(personas.david, alice).allowed
    notice = Notice.objects.get(profile=alice, kind=Notice.Kind.CONSULTATION, practitioner=personas.david)
    assert notice.channel == Notice.Channel.LETTER
    assert deliver(notice.pk) == Notice.Status.SENT
    letter = Letter.objects.get(notice=notice)
    signed_in(client, alice)
    client.get(url("notices"))
    with django_assert_num_queries(11):
        page = client.get(url("notices"))
    content = text(page)
    assert "Consultation du dossier — Dr David Lambert" in content
    assert f"Lettre {letter.reference} (PDF)" in content
    response = client.get(url("letter_pdf", letter.pk))
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    # Another patient's letter is not found.
    other = signed_in(client.__class__(), personas.etienne)
    assert other.get(url("letter_pdf", letter.pk)).status_code == 404
