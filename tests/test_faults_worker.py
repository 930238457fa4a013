"""The notice pipeline under faults, with a real worker, a real SMTP server and a Redis of its own (issue 14).

Each case counts what reached the relay: every notice delivered (none lost), each under one Message-ID (a
resend after a worker died mid-send carries the same one, so it is the same message to relays and clients).
``test_recovery_times_*`` replays the sweep on a simulated clock with the shipped settings, before and after
issue 14, and gives the figures of docs/operations.md.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.fault_fixtures and notify_fixtures are redefined as arguments)

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.delivery import MAYBE_SENT, sweep
from notifications.models import Notice
from tests.fault_fixtures import own_broker, own_redis, start_own_worker  # noqa: F401  (fixtures)
from tests.notify_fixtures import (  # noqa: F401  (fixtures)
    Mailbox,
    SmtpServer,
    alice,
    claire,
    consult,
    david,
    smtp_server,
    wait_until,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _status(notice) -> str:
    return Notice.objects.values_list("status", flat=True).get(pk=notice.pk)


def _message_ids(mailbox) -> list[str]:
    with mailbox.lock:
        return [str(message["Message-ID"]) for message in mailbox.messages]


class AcceptThenHang(Mailbox):
    """Keeps the message, then holds the 250 reply: the relay has it, the worker does not know yet."""

    hang_after_data = True

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        import asyncio

        reply = await super().handle_DATA(server, session, envelope)
        if self.hang_after_data:
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        return reply


class RefuseThenAccept(Mailbox):
    """Answers 451 to the first ``refusals`` messages, then accepts."""

    refusals = 2

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.refusals > 0:
            self.refusals -= 1
            return "451 4.3.0 Try again later"
        return await super().handle_DATA(server, session, envelope)


def test_redis_restarted_under_the_worker_loses_and_doubles_nothing(
    alice, david, smtp_server, own_broker, start_own_worker, settings
):
    """Redis dies (its queue with it) and comes back empty; the worker reconnects, the sweep re-queues."""
    mailbox, server = smtp_server.mailbox, own_broker["server"]
    worker = start_own_worker(smtp_server.port)
    before = [consult(alice, david, kind=Notice.Kind.EMERGENCY) for _ in range(2)]  # not folded: 2 notices + doctor
    mailbox.wait_for(4)

    server.stop()
    during = [consult(alice, david, kind=Notice.Kind.EMERGENCY) for _ in range(2)]  # the broker is down at commit
    assert all(_status(notice) == Notice.Status.PENDING for notice in during)
    server.start()
    restarted = time.monotonic()
    if worker.process.poll() is not None:  # the kombu restore bug (docs/operations.md): the supervisor's job
        worker = start_own_worker(smtp_server.port)

    settings.CARNET_NOTICE_SWEEP_GRACE_SECONDS = 0
    wait_until(
        lambda: sweep() is not None and Notice.objects.filter(status=Notice.Status.SENT).count() == 8, interval=1.0
    )
    recovered = time.monotonic() - restarted
    time.sleep(1)
    ids = _message_ids(mailbox)
    assert len(ids) == 8 and len(set(ids)) == 8  # 8 notices, 8 e-mails: none lost, none doubled
    assert all(_status(notice) == Notice.Status.SENT for notice in before + during)
    assert recovered < 20


def test_worker_killed_after_the_relay_accepted_resends_under_the_same_message_id__N5(
    alice, david, own_broker, start_own_worker, settings
):
    smtp = SmtpServer()
    smtp.mailbox = AcceptThenHang()
    smtp.start()
    try:
        first = start_own_worker(smtp.port)
        notice = consult(alice, david)
        assert smtp.mailbox.stalled.wait(30), "the worker never handed the message over"
        row = Notice.objects.get(pk=notice.pk)
        assert row.status == Notice.Status.SENDING and row.send_started_at is not None  # marked before
        assert row.message_id == f"<notice-{notice.pk}.carnet@{settings.CARNET_MAIL_DOMAIN}>"
        first.kill()  # SIGKILL between the relay's acceptance and the mark
        smtp.mailbox.hang_after_data = False
        smtp.mailbox.release.set()

        start_own_worker(smtp.port)
        settings.CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS = 1
        time.sleep(1.1)
        assert sweep() == [notice.pk]
        assert Notice.objects.get(pk=notice.pk).last_error == MAYBE_SENT  # told apart from "never sent"
        wait_until(lambda: _status(notice) == Notice.Status.SENT, message="the notice marked sent")
        time.sleep(1)
        ids = _message_ids(smtp.mailbox)
        # What SMTP cannot close: the relay got it twice, but as one message (same Message-ID).
        assert ids == [row.message_id, row.message_id]
    finally:
        smtp.stop()


def test_smtp_answering_4xx_then_accepting_delivers_once__N5(alice, david, own_broker, start_own_worker):
    smtp = SmtpServer()
    smtp.mailbox = RefuseThenAccept()
    smtp.start()
    try:
        start_own_worker(smtp.port)
        notice = consult(alice, david)
        wait_until(lambda: _status(notice) == Notice.Status.SENT, timeout=30, message="the notice marked sent")
        time.sleep(1)
        row = Notice.objects.get(pk=notice.pk)
        assert row.attempts == 3 and row.send_started_at is not None
        assert _message_ids(smtp.mailbox) == [row.message_id]  # one e-mail
    finally:
        smtp.stop()


# --- Recovery times with the shipped settings (simulated clock, no worker) ------------------------------

BEFORE = {"CARNET_NOTICE_SWEEP_GRACE_SECONDS": 300, "CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS": 600, "sweep": 60}


def _first_requeue(notice, start, *, sweep_every: int, offset: int) -> int:
    """Seconds from ``start`` until a sweep (every ``sweep_every`` s, first one ``offset`` s in) re-queues it."""
    for tick in range(offset, 3600, sweep_every):
        if notice.pk in sweep(start + timedelta(seconds=tick)):
            return tick
    raise AssertionError("never re-queued")


@pytest.mark.parametrize("era", ["before", "after"])
def test_recovery_times_of_a_lost_message_and_a_killed_delivery(alice, david, settings, monkeypatch, era):
    monkeypatch.setattr("notifications.outbox.enqueue_delivery", lambda notice_id, profile_id=None: None)
    monkeypatch.setattr("notifications.delivery.broker_backlog", lambda: 0)
    every = settings.CARNET_NOTICE_SWEEP_SECONDS
    if era == "before":
        for name, value in BEFORE.items():
            if name.startswith("CARNET"):
                setattr(settings, name, value)
        every = BEFORE["sweep"]
    start = timezone.now()
    lost = consult(alice, david)  # handed to the broker at ``start``, then the message was lost
    worst_lost = _first_requeue(lost, start, sweep_every=every, offset=every)
    Notice.objects.filter(pk=lost.pk).update(status=Notice.Status.SENT)
    killed = consult(alice, david, kind=Notice.Kind.EMERGENCY)
    Notice.objects.filter(recipient_practitioner__isnull=False).update(status=Notice.Status.SENT)
    Notice.objects.filter(pk=killed.pk).update(status=Notice.Status.SENDING, claimed_at=start)
    worst_killed = _first_requeue(killed, start, sweep_every=every, offset=every)
    if era == "before":
        assert (worst_lost, worst_killed) == (360, 660)
    else:  # about one sweep period, and about the task's time limit (60 s) plus one sweep period
        assert (worst_lost, worst_killed) == (60, 90)
        assert settings.CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS > settings.CARNET_NOTICE_TASK_TIME_LIMIT_SECONDS
