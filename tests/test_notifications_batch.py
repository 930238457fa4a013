"""Notices committed together: handed to the worker in batches, delivered by one run each, at most once (N5).

The batch path (``outbox.enqueue_deliveries``, ``delivery.deliver_batch``) run in-process; the last test runs it
in a real worker on Redis to a real SMTP server.
"""
# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

import json
import smtplib
import time
from datetime import date, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.utils import timezone

from access_control.trail import record_entry
from notifications import delivery, tasks
from notifications.delivery import MAYBE_SENT, deliver, deliver_batch, sweep
from notifications.models import Notice
from notifications.outbox import queue_notice
from records.models import Profile
from tests.notify_fixtures import (  # noqa: F401  (fixtures)
    alice,
    broker,
    claire,
    consult,
    david,
    nir_with_key,
    smtp_server,
    start_worker,
    wait_until,
)

pytestmark = pytest.mark.django_db


def _patient(n: int) -> Profile:
    """An activated patient with a verified e-mail who prefers e-mail (N2): ``patient{n}@example.org``."""
    return Profile.objects.create(
        nir=nir_with_key(f"{1_700_000_000_000 + n}"),
        birth_name=f"Patient{n}",
        first_names="Test",
        birth_date=date(1970, 1, 1),
        sex=Profile.Sex.MALE,
        email=f"patient{n}@example.org",
        email_verified=True,
        preferred_channel=Profile.Channel.EMAIL,
        state=Profile.State.ACTIVE,
    )


def _queue_together(profiles, practitioner) -> list[Notice]:
    """One consultation notice per profile, all in one transaction (each in its own savepoint, as actions do)."""
    notices = []
    with transaction.atomic():
        for profile in profiles:
            notices.append(consult(profile, practitioner))
    return notices


def _pairs(notices) -> list[tuple[int, int]]:
    return [(notice.pk, notice.profile_id) for notice in notices]


def _status(notice) -> tuple[str, bool]:
    notice.refresh_from_db()
    return notice.status, notice.send_started_at is not None


@pytest.fixture
def handed(monkeypatch):
    """What goes to the broker: ``("one", args)`` for ``deliver_notice``, ``("batch", args)`` for ``deliver_notices``."""
    messages = []
    monkeypatch.setattr(tasks.deliver_notice, "apply_async", lambda args, **kw: messages.append(("one", args, kw)))
    monkeypatch.setattr(tasks.deliver_notices, "apply_async", lambda args, **kw: messages.append(("batch", args, kw)))
    return messages


def test_notices_committed_together_go_in_batches_of_ids_only__N5(
    david, settings, handed, django_capture_on_commit_callbacks
):
    settings.CARNET_NOTICE_BATCH_SIZE = 2
    profiles = [_patient(n) for n in range(5)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notices = _queue_together(profiles, david)
    assert len(callbacks) == 1  # one hand-off for the commit, not one per notice
    pairs = [[notice.pk, notice.profile_id] for notice in notices]
    assert [(kind, args) for kind, args, _ in handed] == [
        ("batch", [pairs[0:2]]),
        ("batch", [pairs[2:4]]),
        ("one", pairs[4]),  # a batch of one goes as the single-notice task
    ]
    payload = json.dumps([args for _, args, _ in handed])
    for personal in ("Patient", "example.org", "Lambert"):
        assert personal not in payload


def test_one_or_two_notices_of_a_commit_go_one_message_each(
    alice, claire, david, handed, django_capture_on_commit_callbacks
):
    from access_control.models import AccessMode

    with django_capture_on_commit_callbacks(execute=True):
        consult(alice, david, mode=AccessMode.BRIS_DE_GLACE, kind=Notice.Kind.EMERGENCY)  # patient + doctor (N3)
    assert [kind for kind, _, _ in handed] == ["one", "one"]


def test_a_rolled_back_savepoint_drops_its_notice_and_keeps_the_others__N5(
    david, handed, django_capture_on_commit_callbacks
):
    first, lost, third = (_patient(n) for n in range(3))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        kept = [consult(first, david)]
        try:
            with transaction.atomic():
                gone = consult(lost, david)
                raise RuntimeError("the action fails after queueing its notice")
        except RuntimeError:
            pass
        kept.append(consult(third, david))
        kept.append(consult(first, _other_practitioner()))
    ((kind, (pairs,), _),) = handed
    assert kind == "batch" and [pair[0] for pair in pairs] == [kept[0].pk, kept[1].pk, kept[2].pk]
    assert not Notice.objects.filter(pk=gone.pk).exists()
    # A rolled-back notice that joined a sibling's hand-off is skipped by the worker, which finds no row to claim.
    outcomes = deliver_batch([tuple(pair) for pair in pairs] + [(gone.pk, gone.profile_id)])
    assert outcomes == {kept[0].pk: "sent", kept[1].pk: "sent", kept[2].pk: "sent", gone.pk: "skipped"}
    assert len(mail.outbox) == 3


def _other_practitioner():
    from tests.notify_fixtures import make_practitioner

    return make_practitioner("10003456789", "Emma", "Girard", email="emma.girard@example.org")


def test_a_whole_rolled_back_commit_hands_nothing_over__N5(david, handed, django_capture_on_commit_callbacks):
    profiles = [_patient(n) for n in range(3)]
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        _queue_together(profiles, david)
        raise RuntimeError("rolled back")
    assert handed == [] and Notice.objects.count() == 0


def test_a_batch_sends_each_once_in_three_queries_plus_two_a_notice__N5(david, django_assert_num_queries):
    notices = _queue_together([_patient(n) for n in range(4)], david)
    # One claim (UPDATE), the notices and their trail entries (2 SELECTs); then per notice the hand-off mark
    # and the sent mark (5 statements a notice one by one: 20 here).
    with django_assert_num_queries(3 + 2 * 4):
        outcomes = deliver_batch(_pairs(notices))
    assert set(outcomes.values()) == {Notice.Status.SENT}
    assert sorted(message.to[0] for message in mail.outbox) == [f"patient{n}@example.org" for n in range(4)]
    with django_assert_num_queries(1):  # the same message again (redelivered): one claim that takes nothing
        assert set(deliver_batch(_pairs(notices)).values()) == {"skipped"}
    assert deliver(notices[0].pk) == "skipped"
    assert len(mail.outbox) == 4


class _PickyBackend:
    """An e-mail backend refusing some recipients: 550 for ``refused``, 451 for ``busy``; it records the rest."""

    refused: set = set()
    busy: set = set()
    sent: list = []

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        for message in messages:
            (to,) = message.to
            if to in self.refused:
                raise smtplib.SMTPRecipientsRefused({to: (550, b"no such user " + to.encode())})
            if to in self.busy:
                raise smtplib.SMTPDataError(451, b"mailbox busy")
            type(self).sent.append(to)
        return len(messages)


def test_a_failing_address_does_not_hold_the_others__N5(david, settings, handed):
    settings.EMAIL_BACKEND = f"{__name__}._PickyBackend"
    _PickyBackend.refused, _PickyBackend.busy, _PickyBackend.sent = (
        {"patient1@example.org"},
        {"patient3@example.org"},
        [],
    )
    notices = _queue_together([_patient(n) for n in range(5)], david)

    outcomes = deliver_batch(_pairs(notices))

    assert [outcomes[notice.pk] for notice in notices] == ["sent", "failed", "sent", "pending", "sent"]
    assert _PickyBackend.sent == ["patient0@example.org", "patient2@example.org", "patient4@example.org"]
    refused, busy = notices[1], notices[3]
    refused.refresh_from_db()
    busy.refresh_from_db()
    assert refused.last_error == "SMTP 550" and "patient" not in refused.last_error
    assert busy.status == Notice.Status.PENDING and busy.last_error == "SMTP 451" and busy.send_started_at is None
    # The transient one alone is retried after its backoff, by the single-notice task (ids only).
    ((kind, args, options),) = handed
    assert (kind, args) == ("one", [busy.pk, busy.profile_id])
    assert options["countdown"] > 0 and busy.deliver_after > timezone.now()


def test_a_crash_mid_batch_leaves_the_rest_to_the_sweep_and_sends_nothing_twice__N5(david, settings, monkeypatch):
    settings.CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS = 600
    monkeypatch.setattr("notifications.delivery.broker_backlog", lambda: 0)
    monkeypatch.setattr("notifications.outbox.enqueue_delivery", lambda notice_id, profile_id=None: None)
    notices = _queue_together([_patient(n) for n in range(3)], david)
    real_send = delivery.channel_for(notices[0]).__class__.send
    calls = []

    def send_then_die(channel, notice):
        calls.append(notice.pk)
        if len(calls) == 2:
            real_send(channel, notice)  # the relay accepted the second one...
            raise SystemExit("worker killed")  # ...and the worker died before marking it
        real_send(channel, notice)

    monkeypatch.setattr(delivery.channel_for(notices[0]).__class__, "send", send_then_die)
    with pytest.raises(SystemExit):
        deliver_batch(_pairs(notices))
    assert [_status(notice) for notice in notices] == [("sent", True), ("sending", True), ("sending", False)]
    assert len(mail.outbox) == 2

    # The message comes back (acks_late): the claims are fresh, so the run takes nothing.
    assert set(deliver_batch(_pairs(notices)).values()) == {"skipped"}
    monkeypatch.setattr(delivery.channel_for(notices[0]).__class__, "send", real_send)
    # After the claim timeout the sweep puts both back; the "maybe sent" one is resent with the same id.
    with time_machine.travel(timezone.now() + timedelta(seconds=601), tick=True):
        assert sorted(sweep()) == sorted(notice.pk for notice in notices[1:])
        assert Notice.objects.get(pk=notices[1].pk).last_error == MAYBE_SENT
        assert [deliver(notice.pk) for notice in notices] == ["skipped", "sent", "sent"]
    assert [message.to[0] for message in mail.outbox] == [f"patient{n}@example.org" for n in (0, 1, 1, 2)]
    assert len({message.extra_headers["Message-ID"] for message in mail.outbox[1:3]}) == 1  # same Message-ID


def test_a_batch_out_of_time_gives_back_what_it_did_not_start__N5(david, settings, monkeypatch, handed):
    settings.CARNET_NOTICE_TASK_TIME_LIMIT_SECONDS = 60
    notices = _queue_together([_patient(n) for n in range(3)], david)
    clock = iter([0.0, 1.0, 31.0])  # the run starts; the first send is on time, the second past half the limit
    monkeypatch.setattr(delivery, "monotonic", lambda: next(clock))

    outcomes = deliver_batch(_pairs(notices))

    assert [outcomes[notice.pk] for notice in notices] == ["sent", "skipped", "skipped"]
    assert len(mail.outbox) == 1
    for notice in notices[1:]:
        notice.refresh_from_db()
        assert (notice.status, notice.attempts, notice.send_started_at) == (Notice.Status.PENDING, 0, None)
    assert [(kind, args) for kind, args, _ in handed] == [("batch", [[[n.pk, n.profile_id] for n in notices[1:]]])]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_commit_of_many_notices_through_the_worker_sends_each_once__N5(david, smtp_server, start_worker, settings):
    settings.CARNET_NOTICE_BATCH_SIZE = 4
    start_worker(smtp_server.port)
    profiles = [_patient(n) for n in range(10)]
    with transaction.atomic():  # one commit: three messages of at most four ids
        notices = [
            queue_notice(
                profile,
                Notice.Kind.CONSULTATION,
                practitioner=david,
                trail_entry=record_entry(profile=profile, action="record_opened", actor=david),
            )
            for profile in profiles
        ]
    smtp_server.mailbox.wait_for(10)
    wait_until(
        lambda: Notice.objects.filter(pk__in=[n.pk for n in notices], status=Notice.Status.SENT).count() == 10,
        message="the ten notices marked sent",
    )
    time.sleep(1)  # any duplicate would arrive now
    assert sorted(message["To"] for message in smtp_server.mailbox.messages) == sorted(p.email for p in profiles)
