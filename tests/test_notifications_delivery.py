"""The outbox and the delivery loop, run in-process (the worker tests run the same code in a real worker)."""
# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

import json
import smtplib
import threading
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from access_control.models import AccessMode
from notifications import delivery
from notifications.channels import dev
from notifications.delivery import RetryDelivery, deliver, sweep
from notifications.models import Notice
from notifications.outbox import queue_notice
from records.crypto import seal
from tests.notify_fixtures import (  # noqa: F401  (fixtures)
    SECRET_TITLE,
    alice,
    bernard,
    claire,
    consult,
    david,
    secret_document,
)

pytestmark = pytest.mark.django_db


def _body(message) -> str:
    return message.body + "".join(content for content, _ in message.alternatives)


def test_consultation_email_names_practitioner_without_document_title__N1_N6(alice, david):
    document = secret_document(alice, david)
    notice = consult(alice, david, document=document)
    assert notice.channel == Notice.Channel.EMAIL

    assert deliver(notice.pk) == Notice.Status.SENT

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice.martin@example.org"]
    body = _body(message)
    assert "Dr David Lambert" in body and "Médecin" in body
    assert SECRET_TITLE not in body and "coloscopie" not in body
    assert message.alternatives[0][1] == "text/html"
    assert "/confidentialite/" in message.body  # how to mask or block (N6)
    notice.refresh_from_db()
    assert notice.status == Notice.Status.SENT and notice.sent_at is not None and notice.attempts == 1


def test_three_consultations_same_day_fold_into_one_notice__N1(alice, david):
    with time_machine.travel(timezone.make_aware(datetime(2026, 11, 30, 9, 0)), tick=True):
        first = consult(alice, david)
    with time_machine.travel(timezone.make_aware(datetime(2026, 11, 30, 12, 30)), tick=True):
        second = consult(alice, david)
    with time_machine.travel(timezone.make_aware(datetime(2026, 11, 30, 18, 45)), tick=True):
        third = consult(alice, david)
        assert first.pk == second.pk == third.pk
        assert Notice.objects.count() == 1
        assert first.trail_entries.count() == 3
        deliver(first.pk)
    body = mail.outbox[0].body
    assert body.count("Dr David Lambert") == 3
    for hour in ("09:00", "12:30", "18:45"):
        assert hour in body


def test_next_day_consultation_is_a_new_notice__N1(alice, david):
    with time_machine.travel(timezone.make_aware(datetime(2026, 11, 30, 23, 30)), tick=True):
        first = consult(alice, david)
    with time_machine.travel(timezone.make_aware(datetime(2026, 12, 1, 0, 30)), tick=True):
        second = consult(alice, david)
    assert first.pk != second.pk


def test_consultation_after_a_failed_notice_starts_a_follow_up__N1(alice, david):
    first = consult(alice, david)
    Notice.objects.filter(pk=first.pk).update(status=Notice.Status.FAILED)
    second = consult(alice, david)
    assert second.pk != first.pk and second.status == Notice.Status.PENDING


def test_emergency_access_notifies_patient_and_treating_doctor_unfolded__N3(alice, claire, david):
    first = consult(alice, david, mode=AccessMode.BRIS_DE_GLACE, kind=Notice.Kind.EMERGENCY)
    consult(alice, david, mode=AccessMode.BRIS_DE_GLACE, kind=Notice.Kind.EMERGENCY)
    notices = Notice.objects.filter(kind=Notice.Kind.EMERGENCY)
    assert notices.count() == 4  # never folded: two accesses x (patient + treating doctor)
    doctor_copies = notices.filter(recipient_practitioner=claire)
    assert doctor_copies.count() == 2
    assert all(n.channel == Notice.Channel.EMAIL for n in notices)

    for notice in notices:
        deliver(notice.pk)
    recipients = sorted(m.to[0] for m in mail.outbox)
    assert recipients.count("claire.dubois@cabinet.example") == 2
    assert recipients.count("alice.martin@example.org") == 2
    to_doctor = next(m for m in mail.outbox if m.to == ["claire.dubois@cabinet.example"])
    assert "Bris de glace" in to_doctor.body
    # No patient identity over SMTP: a link to the patient's trail, shown after sign-in.
    for identity in ("Alice", "Martin", "MARTIN", "12 mars 1985", "1985"):
        assert identity not in to_doctor.body and identity not in to_doctor.subject, identity
    assert f"/pro/mes-patients/{alice.pk}/trace/" in to_doctor.body
    to_patient = next(m for m in mail.outbox if m.to == ["alice.martin@example.org"])
    assert "urgence" in to_patient.subject and first.practitioner.last_name in to_patient.body


def test_emergency_notice_queued_twice_for_doctor_is_not_doubled__N3(alice, claire, david):
    from access_control.trail import record_entry

    with transaction.atomic():
        entry = record_entry(profile=alice, action="record_opened", actor=david, mode=AccessMode.CENTRE_15)
        queue_notice(alice, Notice.Kind.EMERGENCY, practitioner=david, trail_entry=entry)
        queue_notice(alice, Notice.Kind.EMERGENCY, practitioner=david, trail_entry=entry, recipient_practitioner=claire)
    assert Notice.objects.filter(recipient_practitioner=claire).count() == 1


def test_letter_channel_for_never_activated_profile__N2(bernard, david):
    assert consult(bernard, david).channel == Notice.Channel.LETTER


def test_no_usable_address_is_undeliverable__N2(bernard, david):
    bernard.address_street = ""
    bernard.save(update_fields=["address_street"])
    notice = consult(bernard, david)
    assert notice.status == Notice.Status.UNDELIVERABLE


def test_deliver_twice_sends_once__N5(alice, david):
    notice = consult(alice, david)
    assert deliver(notice.pk) == Notice.Status.SENT
    assert deliver(notice.pk) == "skipped"
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_send_once__N5(alice, david, settings):
    if connection.vendor == "sqlite":
        settings.DATABASES["default"]["OPTIONS"]["timeout"] = 20
    notice = consult(alice, david)
    outcomes = []
    barrier = threading.Barrier(4)

    def run():
        barrier.wait()
        try:
            outcomes.append(deliver(notice.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["sent", "skipped", "skipped", "skipped"]
    assert len(mail.outbox) == 1


class _FailingBackend:
    """An e-mail backend whose send raises the configured exception."""

    error: Exception | None = None

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise type(self).error


@pytest.fixture
def failing_mail(settings):
    settings.EMAIL_BACKEND = f"{__name__}._FailingBackend"
    return _FailingBackend


def test_transient_failure_goes_back_to_pending_with_backoff__N5(alice, david, failing_mail, settings):
    settings.CARNET_NOTICE_RETRY_BASE_SECONDS = 60
    failing_mail.error = ConnectionRefusedError("[Errno 111] alice.martin@example.org")
    notice = consult(alice, david)
    before = timezone.now()
    with pytest.raises(RetryDelivery) as caught:
        deliver(notice.pk)
    notice.refresh_from_db()
    assert notice.status == Notice.Status.PENDING and notice.attempts == 1
    assert notice.last_error == "ConnectionRefusedError"  # no patient data in the error text
    assert 30 <= caught.value.countdown <= 60
    assert notice.deliver_after >= before + timedelta(seconds=29)
    # Not due yet: another run does nothing.
    assert deliver(notice.pk) == "skipped"


def test_smtp_4xx_retries_and_5xx_fails__N5(alice, david, failing_mail):
    failing_mail.error = smtplib.SMTPDataError(451, b"4.3.0 mailbox alice.martin@example.org busy")
    notice = consult(alice, david)
    with pytest.raises(RetryDelivery):
        deliver(notice.pk)
    notice.refresh_from_db()
    assert notice.last_error == "SMTP 451"

    failing_mail.error = smtplib.SMTPRecipientsRefused({"alice.martin@example.org": (550, b"no such user")})
    Notice.objects.filter(pk=notice.pk).update(deliver_after=timezone.now())
    assert deliver(notice.pk) == Notice.Status.FAILED
    notice.refresh_from_db()
    assert notice.status == Notice.Status.FAILED and notice.last_error == "SMTP 550"
    assert "alice" not in notice.last_error


def test_max_attempts_then_failed__N5(alice, david, failing_mail, settings):
    settings.CARNET_NOTICE_MAX_ATTEMPTS = 3
    failing_mail.error = TimeoutError()
    notice = consult(alice, david)
    for _ in range(2):
        with pytest.raises(RetryDelivery):
            deliver(notice.pk)
        Notice.objects.filter(pk=notice.pk).update(deliver_after=timezone.now())
    assert deliver(notice.pk) == Notice.Status.FAILED
    notice.refresh_from_db()
    assert notice.attempts == 3 and "after 3 attempts" in notice.last_error


def test_backoff_grows_exponentially_with_jitter_and_a_cap(settings):
    settings.CARNET_NOTICE_RETRY_BASE_SECONDS = 10
    settings.CARNET_NOTICE_RETRY_MAX_SECONDS = 100
    for attempts, ceiling in ((1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (9, 100)):
        values = {delivery.backoff_seconds(attempts) for _ in range(20)}
        assert all(ceiling / 2 <= v <= ceiling for v in values)
        assert len(values) > 1  # jitter


def test_pre_opening_code_is_erased_once_delivered__L1_N7(bernard, settings):
    with transaction.atomic():
        notice = queue_notice(bernard, Notice.Kind.PRE_OPENING, sealed_payload=seal(b"K7P-4QX-92M"))
    settings.CARNET_NOTICE_CHANNEL_OVERRIDE = "dev"
    dev.outbox.clear()
    assert deliver(notice.pk) == Notice.Status.SENT
    assert "K7P-4QX-92M" in dev.outbox[-1]["text"]
    assert "42" in dev.outbox[-1]["text"]
    notice.refresh_from_db()
    assert notice.sealed_payload is None


def test_dev_channel_only_records(alice, david, settings):
    settings.CARNET_NOTICE_CHANNEL_OVERRIDE = "dev"
    dev.outbox.clear()
    notice = consult(alice, david)
    assert deliver(notice.pk) == Notice.Status.SENT
    assert mail.outbox == []
    assert dev.outbox[-1]["notice_id"] == notice.pk


@pytest.mark.parametrize("kind", [k for k in Notice.Kind.values if k not in ("consultation", "emergency")])
def test_every_kind_renders_in_french_and_english_without_clinical_content__N6_N7(alice, david, kind, settings):
    settings.CARNET_NOTICE_CHANNEL_OVERRIDE = "dev"
    document = secret_document(alice, david)
    from access_control.trail import record_entry

    for language in ("fr", "en"):
        alice.preferred_language = language
        alice.save(update_fields=["preferred_language"])
        with transaction.atomic():
            entry = record_entry(profile=alice, action="document_deposited", actor=david, document=document)
            notice = queue_notice(alice, kind, practitioner=david, trail_entry=entry)
        dev.outbox.clear()
        assert deliver(notice.pk) == Notice.Status.SENT
        text = dev.outbox[-1]["text"]
        assert SECRET_TITLE not in text and dev.outbox[-1]["subject"]
        assert notice_reference_in(text, notice)


def notice_reference_in(text, notice) -> bool:
    from notifications.content import notice_reference

    return notice_reference(notice) in text


def test_sweep_requeues_pending_and_abandoned_notices__N5(alice, bernard, david, settings, monkeypatch):
    settings.CARNET_NOTICE_SWEEP_GRACE_SECONDS = 60
    settings.CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS = 600
    queued = []
    monkeypatch.setattr(
        "notifications.outbox.enqueue_delivery", lambda notice_id, profile_id=None: queued.append(notice_id)
    )
    monkeypatch.setattr("notifications.delivery.broker_backlog", lambda: 0)  # the queue is empty: short grace
    lost = consult(alice, david)
    stuck = consult(bernard, david)
    now = timezone.now()
    Notice.objects.filter(pk=stuck.pk).update(status=Notice.Status.SENDING, claimed_at=now - timedelta(minutes=11))
    assert sweep(now) == [stuck.pk]  # the lost one is still within its grace period
    assert sweep(now + timedelta(seconds=30)) == []  # just handed over: not again until the grace passes
    assert sweep(now + timedelta(seconds=61)) == [lost.pk, stuck.pk]  # still pending after the grace
    assert queued == [stuck.pk, lost.pk, stuck.pk]
    stuck.refresh_from_db()
    assert stuck.status == Notice.Status.PENDING and "interrupted" in stuck.last_error


def test_task_arguments_carry_ids_only__N5(alice, bernard, david, monkeypatch, django_capture_on_commit_callbacks):
    from notifications import tasks

    calls = []
    monkeypatch.setattr(tasks.deliver_notice, "apply_async", lambda *a, **kw: calls.append((a, kw)))
    with django_capture_on_commit_callbacks(execute=True):
        consult(alice, david, mode=AccessMode.BRIS_DE_GLACE, kind=Notice.Kind.EMERGENCY)
    with django_capture_on_commit_callbacks(execute=True):
        consult(bernard, david)
    assert len(calls) == 3  # patient + treating doctor, then Bernard
    for args, kwargs in calls:
        payload = json.dumps({"args": kwargs.get("args", args[0] if args else None), "kwargs": kwargs.get("kwargs")})
        assert all(isinstance(value, int) for value in kwargs["args"])
        for personal in ("Alice", "Martin", "Petit", "alice.martin", "Lyon", "69007", "Lambert"):
            assert personal not in payload


def test_email_in_the_patient_language__N6(alice, david):
    alice.preferred_language = "en"
    alice.save(update_fields=["preferred_language"])
    deliver(consult(alice, david).pk)
    message = mail.outbox[0]
    assert "Your medical record was consulted" in message.subject
    assert "Dear Madam," in message.body and "Doctor" in message.body  # profession in English too
    assert "Access mode" in message.alternatives[0][0]


def test_the_emergency_link_is_the_practitioner_portals_patient_trail__A6():
    from django.urls import reverse

    from notifications.content import PRO_PATIENT_TRAIL_PATH

    assert PRO_PATIENT_TRAIL_PATH.format(profile_id=7) == reverse("practitioners:patient_trail", args=[7])
