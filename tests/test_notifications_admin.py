"""The notice pipeline in the admin: filters without N+1, audited resend, downloads for staff only, counts."""
# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from access_control.models import TrailEntry
from notifications.delivery import deliver
from notifications.models import Letter, Notice, PrintBatch
from records.models import User
from tests.notify_fixtures import (  # noqa: F401  (fixtures)
    alice,
    bernard,
    claire,
    consult,
    david,
    emma,
    pdf_text,
)
from tests.signin_fixtures import verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def karim(db):
    return User.objects.create_user(
        username="karim",
        password="not-used-here-1234",
        first_name="Karim",
        last_name="Benali",
        kind=User.Kind.STAFF,
        is_staff=True,
        is_superuser=True,
    )


@pytest.fixture
def staff_client(client, karim):
    return verified_client(client, karim)


def _changelist_queries(staff_client, **params) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(reverse("admin:notifications_notice_changelist"), params)
    assert response.status_code == 200
    return len(queries)


def test_notice_changelist_filters_without_n_plus_one__N5(staff_client, alice, bernard, david, emma):
    consult(alice, david)
    few = _changelist_queries(staff_client)
    for practitioner in (david, emma):
        consult(bernard, practitioner)
    consult(alice, emma)
    assert _changelist_queries(staff_client) == few
    response = staff_client.get(
        reverse("admin:notifications_notice_changelist"), {"kind": "consultation", "channel": "letter"}
    )
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 2
    assert "Aujourd" in response.content.decode()  # today's counts above the list


def test_resend_is_an_audited_action__N5_T1(staff_client, alice, david, karim):
    notice = consult(alice, david)
    Notice.objects.filter(pk=notice.pk).update(status=Notice.Status.FAILED, attempts=8, last_error="SMTP 550")
    response = staff_client.post(
        reverse("admin:notifications_notice_changelist"),
        {"action": "resend", "_selected_action": [notice.pk]},
    )
    assert response.status_code == 302
    notice.refresh_from_db()
    assert notice.status == Notice.Status.PENDING and notice.attempts == 0 and notice.last_error == ""
    entry = TrailEntry.objects.get(action="notice_resent")
    assert entry.actor_kind == TrailEntry.ActorKind.STAFF and entry.actor_user_id == karim.pk
    assert entry.profile_id == alice.pk
    assert deliver(notice.pk) == Notice.Status.SENT


def test_resend_of_a_sent_notice_makes_a_copy_and_in_progress_is_refused__N5(staff_client, alice, david):
    notice = consult(alice, david)
    url = reverse("admin:notifications_notice_changelist")
    staff_client.post(url, {"action": "resend", "_selected_action": [notice.pk]})
    assert Notice.objects.count() == 1  # pending: refused, nothing changed
    deliver(notice.pk)
    staff_client.post(url, {"action": "resend", "_selected_action": [notice.pk]})
    copy = Notice.objects.exclude(pk=notice.pk).get()
    assert copy.status == Notice.Status.PENDING and copy.trail_entries.count() == 1


def test_notices_are_read_only_in_the_admin(staff_client, alice, david):
    notice = consult(alice, david)
    response = staff_client.get(reverse("admin:notifications_notice_change", args=[notice.pk]))
    assert response.status_code == 200 and b'name="_save"' not in response.content
    assert b"sealed_payload" not in response.content


def test_staff_downloads_letter_and_batch_files_others_cannot__N4(client, staff_client, bernard, david, alice):
    deliver(consult(bernard, david).pk)
    letter = Letter.objects.get()
    letter_url = reverse("admin:notifications_letter_pdf", args=[letter.pk])

    response = staff_client.get(letter_url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert "69007 LYON" in pdf_text(response.content)
    assert TrailEntry.objects.filter(action="letter_downloaded", profile_id=bernard.pk).count() == 1

    changelist = staff_client.post(
        reverse("admin:notifications_printbatch_changelist"),
        {"action": "close", "_selected_action": [letter.batch_id]},
    )
    assert changelist.status_code == 302
    batch = PrintBatch.objects.get()
    assert batch.status == PrintBatch.Status.CLOSED
    pdf = staff_client.get(reverse("admin:notifications_printbatch_file", args=[batch.pk, "pdf"]))
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(b"%PDF")
    manifest = staff_client.get(reverse("admin:notifications_printbatch_file", args=[batch.pk, "manifest"]))
    rows = list(csv.reader(io.StringIO(b"".join(manifest.streaming_content).decode())))
    assert rows[1] == [letter.reference, "1", "69007", "FR"]
    listing = staff_client.get(reverse("admin:notifications_printbatch_changelist"))
    assert reverse("admin:notifications_printbatch_file", args=[batch.pk, "manifest"]) in listing.content.decode()

    patient = User.objects.create_user(username="bernard", password="x" * 12)
    verified_client(client, patient)
    for url in (letter_url, reverse("admin:notifications_printbatch_file", args=[batch.pk, "pdf"])):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_daily_counts__N4_N5(staff_client, alice, bernard, david, emma):
    deliver(consult(alice, david).pk)
    deliver(consult(bernard, david).pk)
    deliver(consult(bernard, emma).pk)
    failed = consult(alice, emma)
    Notice.objects.filter(pk=failed.pk).update(status=Notice.Status.FAILED)
    bernard.address_street = ""
    bernard.save(update_fields=["address_street"])
    from django.db import transaction

    from notifications.outbox import queue_notice

    with transaction.atomic():
        queue_notice(bernard, Notice.Kind.HOLD_REMINDER)

    response = staff_client.get(reverse("admin:notifications_notice_daily"))
    assert response.status_code == 200
    today = response.context["rows"][0]
    assert today["sent"] == 3 and today["failed"] == 1 and today["undeliverable"] == 1
    assert today["letters"] == 2 and today["pages"] == 2
