"""The notice pipeline with real parts: a Celery worker on Redis, an SMTP server on loopback, real PDFs.

Each test starts ``celery -A config worker`` as a subprocess on a queue of its own, pointed at the test
database; they fail (never skip) when Redis is not there.
"""
# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

import time

import pytest

from notifications.batches import letter_pdf
from notifications.delivery import sweep
from notifications.models import Letter, Notice
from notifications.tasks import deliver_notice
from tests.notify_fixtures import (  # noqa: F401  (fixtures)
    SECRET_TITLE,
    SmtpServer,
    alice,
    bernard,
    broker,
    claire,
    consult,
    david,
    free_port,
    pdf_text,
    secret_document,
    set_broker_url,
    smtp_server,
    start_worker,
    text_of,
    wait_until,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _status(notice) -> str:
    return Notice.objects.values_list("status", flat=True).get(pk=notice.pk)


def test_consultation_email_through_worker_names_practitioner_only__N5_N6(alice, david, smtp_server, start_worker):
    start_worker(smtp_server.port)
    document = secret_document(alice, david)
    notice = consult(alice, david, document=document)  # commits: the id goes to Redis after commit

    (message,) = smtp_server.mailbox.wait_for(1)
    plain, html = text_of(message)
    assert message["To"] == "alice.martin@example.org"
    assert "Dr David Lambert" in plain and "Médecin" in plain and "Dr David Lambert" in html
    for part in (plain, html, message["Subject"]):
        assert SECRET_TITLE not in part and "coloscopie" not in part
    wait_until(lambda: _status(notice) == Notice.Status.SENT, message="the notice marked sent")


def test_consultation_letter_through_worker_has_address_and_practitioner__N4_N6(
    bernard, david, smtp_server, start_worker
):
    start_worker(smtp_server.port)
    notice = consult(bernard, david, document=secret_document(bernard, david))

    wait_until(lambda: _status(notice) == Notice.Status.SENT, timeout=60, message="the letter filed")
    text = pdf_text(letter_pdf(Letter.objects.get(notice=notice)))
    for line in ("M. Bernard PETIT", "12 avenue Jean Jaurès", "69007 LYON", "Dr David Lambert", "Médecin"):
        assert line in text
    assert SECRET_TITLE not in text
    assert smtp_server.mailbox.messages == []


def test_task_run_twice_concurrently_sends_one_email__N5(alice, david, smtp_server, start_worker, broker):
    notice = consult(alice, david)  # enqueued once on commit (no worker consumes yet)
    for _ in range(3):
        deliver_notice.apply_async(args=[notice.pk])
    start_worker(smtp_server.port)  # two pool processes race for four messages of the same notice

    smtp_server.mailbox.wait_for(1)
    wait_until(lambda: _status(notice) == Notice.Status.SENT, message="the notice marked sent")
    time.sleep(2)  # give any duplicate the time to arrive
    assert len(smtp_server.mailbox.messages) == 1


def test_broker_down_at_commit_then_sweep_delivers_once__N5(alice, david, smtp_server, start_worker, broker, settings):
    app = broker["app"]
    set_broker_url(app, f"redis://127.0.0.1:{free_port()}/5")  # nothing listens there
    notice = consult(alice, david)  # the enqueue after commit fails and is only logged
    assert _status(notice) == Notice.Status.PENDING

    set_broker_url(app, broker["url"])  # the broker is back
    start_worker(smtp_server.port)
    time.sleep(1)
    assert smtp_server.mailbox.messages == []  # nothing was lost... nor sent yet
    settings.CARNET_NOTICE_SWEEP_GRACE_SECONDS = 0
    assert sweep() == [notice.pk]

    smtp_server.mailbox.wait_for(1)
    wait_until(lambda: _status(notice) == Notice.Status.SENT, message="the notice marked sent")
    sweep()  # nothing pending any more: no second e-mail
    time.sleep(1)
    assert len(smtp_server.mailbox.messages) == 1


def test_smtp_down_retries_then_delivers_when_back__N5(alice, david, start_worker):
    port = free_port()  # the SMTP server is down
    start_worker(port)
    notice = consult(alice, david)

    wait_until(lambda: Notice.objects.get(pk=notice.pk).attempts >= 2, timeout=30, message="two failed attempts")
    failed = Notice.objects.get(pk=notice.pk)
    assert failed.status in (Notice.Status.PENDING, Notice.Status.SENDING)
    assert failed.last_error == "ConnectionRefusedError"

    server = SmtpServer(port).start()  # the relay comes back
    try:
        (message,) = server.mailbox.wait_for(1, timeout=30)
        wait_until(lambda: _status(notice) == Notice.Status.SENT, message="the notice marked sent")
        assert message["To"] == "alice.martin@example.org"
        # At least one refused attempt, then the one that got through. (The claim counts the attempt, so the
        # second attempt may be the one that finds the relay back: >= 2, not >= 3.)
        assert Notice.objects.get(pk=notice.pk).attempts >= 2
    finally:
        server.stop()


def test_worker_killed_mid_delivery_is_requeued_and_delivered_once__N5(
    alice, david, smtp_server, start_worker, settings
):
    mailbox = smtp_server.mailbox
    mailbox.stall_mail = True  # the relay hangs in the middle of the SMTP dialogue
    first = start_worker(smtp_server.port)
    notice = consult(alice, david)
    assert mailbox.stalled.wait(30), "the worker never reached the SMTP server"
    assert _status(notice) == Notice.Status.SENDING

    first.kill()  # SIGKILL: no clean-up, the notice stays claimed
    mailbox.stall_mail = False
    mailbox.release.set()
    assert mailbox.messages == []
    start_worker(smtp_server.port)
    time.sleep(1)
    assert _status(notice) == Notice.Status.SENDING  # nobody delivers it on their own...

    settings.CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS = 1
    time.sleep(1.1)
    assert sweep() == [notice.pk]  # ...until the sweep finds the abandoned claim

    mailbox.wait_for(1)
    wait_until(lambda: _status(notice) == Notice.Status.SENT, message="the notice marked sent")
    time.sleep(1)
    assert len(mailbox.messages) == 1
