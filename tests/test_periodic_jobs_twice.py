"""Every periodic job is harmless when it runs twice (issue 14: two schedulers, or a message delivered twice).

Each job of ``CELERY_BEAT_SCHEDULE`` runs twice in a row, and the lock-taking ones also twice at once (two
threads, each on its own database connection), and the effect is counted: the notices, letters, batch files,
reminders, alerts, openings, closures, purges, releases and heartbeats are those of one run.
``test_every_scheduled_job_is_covered_here`` fails when a job joins the schedule without such a test.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from access_control import tasks as access_tasks
from access_control.alerts import SWEEP_AFTER, alert_review_task, send_review_alert
from access_control.api import open_record
from access_control.models import Review, TrailEntry
from access_control.trail import NATIONAL_CHAIN
from notifications import tasks as notice_tasks
from notifications.channels import dev
from notifications.delivery import deliver
from notifications.models import BatchFile, Letter, Notice, PrintBatch
from records import actions
from records import tasks as records_tasks
from records.heartbeat import worker_heartbeat
from records.lifecycle import TrailAction
from records.models import DocumentType, Profile, WorkerHeartbeat
from tests.lifecycle_fixtures import enrol, enrol_active, make_staff
from tests.notify_fixtures import alice, bernard, claire, consult, david  # noqa: F401  (fixtures)
from tests.trail_fixtures import make_document, make_practitioner, make_profile

START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)

# The task of each scheduled job -> the tests below that run it twice.
COVERED = {
    "records.open_due_profiles": "test_opening_twice_opens_once__L3",
    "records.close_expired_suspensions": "test_closing_suspensions_twice_closes_once__L7",
    "records.purge_due_profiles": "test_purging_twice_purges_once__L5_T4",
    "access_control.send_hold_reminders": "test_hold_reminders_twice_remind_once__A8",
    "access_control.release_expired_holds": "test_hold_releases_twice_release_once__A8",
    "access_control.sweep_review_alerts": "test_review_alert_sweep_twice_mails_once__A13",
    "notifications.sweep_notices": "test_notice_sweep_twice_delivers_each_notice_once__N5",
    "notifications.close_letter_batches": "test_closing_letter_batches_twice_files_once__N4",
    "records.worker_heartbeat": "test_heartbeat_twice_keeps_one_row",
}


def test_every_scheduled_job_is_covered_here():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled == set(COVERED)
    names = set(globals())
    assert all(test in names for test in COVERED.values())


def at_once(job, runs: int = 2) -> list:
    """Run ``job`` in ``runs`` threads released together; their results (any order). Each closes its connection."""
    barrier = threading.Barrier(runs)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=10)
            results.append(job())
        except Exception as exc:  # noqa: BLE001  re-raised in the test's thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def counts(*querysets) -> tuple[int, ...]:
    return tuple(queryset.count() for queryset in querysets)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def discharge_letter_type(db):
    """The document type the trail fixtures use; transactional tests flush the seeded catalogue."""
    DocumentType.objects.get_or_create(
        code="11502-2",
        defaults={"code_system": "LOINC", "label_fr": "Compte rendu", "label_en": "Report", "class_code": "10"},
    )


# --- records: lifecycle (L3, L7, L5/T4) ---------------------------------------------------------------------


def _opening_case(clock):
    profiles = [enrol()[0] for _ in range(3)]
    clock.move_to(START + timedelta(days=settings.CARNET_OPPOSITION_DAYS))
    return profiles


def _assert_opened_once(profiles):
    for profile in profiles:
        assert Profile.objects.get(pk=profile.pk).state == Profile.State.OPEN
        assert TrailEntry.objects.filter(profile_id=profile.pk, action=TrailAction.OPENING).count() == 1
        assert Notice.objects.filter(profile_id=profile.pk).count() == 1  # the pre-opening letter only (L3)


@pytest.mark.django_db
def test_opening_twice_opens_once__L3(clock):
    profiles = _opening_case(clock)
    assert [records_tasks.open_due_profiles_task(), records_tasks.open_due_profiles_task()] == [3, 0]
    _assert_opened_once(profiles)


@pytest.mark.django_db(transaction=True)
def test_opening_twice_at_once_opens_once__L3(clock):
    profiles = _opening_case(clock)
    assert sum(at_once(records_tasks.open_due_profiles_task)) == 3
    _assert_opened_once(profiles)


def _suspension_case(clock):
    staff = make_staff()
    profiles = [enrol_active(email=f"p{n}@example.org")[0] for n in range(2)]
    for profile in profiles:
        actions.do_suspend_profile(profile, actor=staff, reason="fraude")
    clock.move_to(START + timedelta(days=settings.CARNET_SUSPENSION_CLOSE_DAYS))
    return profiles


def _assert_closed_once(profiles):
    for profile in profiles:
        assert Profile.objects.get(pk=profile.pk).closure_reason == Profile.ClosureReason.SUSPENSION
        entries = TrailEntry.objects.filter(profile_id=profile.pk, action=TrailAction.CLOSURE)
        assert entries.count() == 1
        assert Notice.objects.filter(profile_id=profile.pk, kind=Notice.Kind.CLOSURE).count() == 1


@pytest.mark.django_db
def test_closing_suspensions_twice_closes_once__L7(clock):
    profiles = _suspension_case(clock)
    runs = [records_tasks.close_expired_suspensions_task(), records_tasks.close_expired_suspensions_task()]
    assert runs == [2, 0]
    _assert_closed_once(profiles)


@pytest.mark.django_db(transaction=True)
def test_closing_suspensions_twice_at_once_closes_once__L7(clock):
    profiles = _suspension_case(clock)
    assert sum(at_once(records_tasks.close_expired_suspensions_task)) == 2
    _assert_closed_once(profiles)


def _purge_case(clock):
    due = []
    for n in range(2):
        profile, user = enrol_active(email=f"p{n}@example.org")
        actions.do_close_profile(profile, actor=user, reason=Profile.ClosureReason.PATIENT)
        actions.do_request_early_deletion(profile, actor=user)
        due.append(profile)
    kept, _user = enrol_active(email="kept@example.org")
    clock.move_to(START + timedelta(days=settings.CARNET_EARLY_DELETION_DAYS))
    return due, kept


def _assert_purged_once(due, kept):
    assert not Profile.objects.filter(pk__in=[p.pk for p in due]).exists()
    assert Profile.objects.filter(pk=kept.pk).exists()
    assert (
        TrailEntry.objects.filter(profile_id=NATIONAL_CHAIN, action=TrailAction.PURGE).count() == 2
    )  # one per profile


@pytest.mark.django_db
def test_purging_twice_purges_once__L5_T4(clock, django_capture_on_commit_callbacks):
    due, kept = _purge_case(clock)
    with django_capture_on_commit_callbacks(execute=True):
        runs = [records_tasks.purge_due_profiles_task(), records_tasks.purge_due_profiles_task()]
    assert runs == [2, 0]
    _assert_purged_once(due, kept)


@pytest.mark.django_db(transaction=True)
def test_purging_twice_at_once_purges_once__L5_T4(clock):
    due, kept = _purge_case(clock)
    assert sum(at_once(records_tasks.purge_due_profiles_task)) == 2
    _assert_purged_once(due, kept)


# --- access_control: holds (A8) and review alerts (A13) ----------------------------------------------------


def _held_documents(count: int = 3):
    author = make_practitioner()
    profile = make_profile()
    return [
        make_document(profile, author, deposited_at=START, held_until=START + timedelta(days=90)) for _ in range(count)
    ]


def _hold_effects():
    return counts(
        Notice.objects.filter(kind=Notice.Kind.HOLD_REMINDER),
        TrailEntry.objects.filter(action=access_tasks.ACTION_HOLD_REMINDER),
        TrailEntry.objects.filter(action=access_tasks.ACTION_HOLD_RELEASE),
    )


@pytest.mark.django_db
def test_hold_reminders_twice_remind_once__A8(clock):
    _held_documents()
    clock.move_to(START + timedelta(days=settings.CARNET_HOLD_REMINDER_DAYS, minutes=1))
    assert [access_tasks.send_hold_reminders_task(), access_tasks.send_hold_reminders_task()] == [3, 0]
    assert _hold_effects() == (1, 3, 0)  # one notice for the profile, one trail entry per document


@pytest.mark.django_db(transaction=True)
def test_hold_reminders_and_releases_twice_at_once_act_once__A8(clock, discharge_letter_type):
    _held_documents()
    clock.move_to(START + timedelta(days=settings.CARNET_HOLD_REMINDER_DAYS, minutes=1))
    assert sum(at_once(access_tasks.send_hold_reminders_task)) == 3
    assert _hold_effects() == (1, 3, 0)
    clock.move_to(START + timedelta(days=settings.CARNET_HOLD_RELEASE_DAYS, minutes=1))
    assert sum(at_once(access_tasks.release_expired_holds_task)) == 3
    assert _hold_effects() == (1, 3, 3)


@pytest.mark.django_db
def test_hold_releases_twice_release_once__A8(clock):
    documents = _held_documents()
    clock.move_to(START + timedelta(days=settings.CARNET_HOLD_RELEASE_DAYS, minutes=1))
    before = Notice.objects.count()
    assert [access_tasks.release_expired_holds_task(), access_tasks.release_expired_holds_task()] == [3, 0]
    assert _hold_effects()[2] == 3
    assert Notice.objects.count() - before <= 1  # at most the one notice of the first run
    for document in documents:
        document.refresh_from_db()
        assert not document.is_held


@pytest.mark.django_db
def test_review_alert_sweep_twice_mails_once__A13(personas, mailoutbox, monkeypatch):
    """The sweep queues the unsent alert again on each run; the alert task claims the review, so one e-mail."""
    personas.karim.groups.add(Group.objects.get(name="Superviseurs"))
    queued = []
    monkeypatch.setattr(alert_review_task, "apply_async", lambda args, retry: queued.append(*args))
    assert open_record(personas.david, personas.gerard).allowed  # its on-commit hand-off never runs here
    review = Review.objects.get(kind=Review.Kind.HIGH_PROFILE, profile=personas.gerard)

    with time_machine.travel(timezone.now() + SWEEP_AFTER, tick=False):
        assert [access_tasks.sweep_review_alerts_task(), access_tasks.sweep_review_alerts_task()] == [1, 1]
    assert queued == [review.pk, review.pk]  # two messages, as two schedulers would send

    assert [send_review_alert(review_id) for review_id in queued] == [True, False]
    assert len(mailoutbox) == 1


# --- notifications: the sweep (N5) and the print batches (N4) -------------------------------------------------


def _lost_notices(patients, author, monkeypatch, settings) -> list[int]:
    """Notices whose broker message was lost: pending, handed over longer ago than the grace."""
    settings.CARNET_NOTICE_CHANNEL_OVERRIDE = "dev"
    monkeypatch.setattr("notifications.outbox.enqueue_delivery", lambda notice_id, profile_id=None: None)
    notices = [consult(patient, author).pk for patient in patients]
    long_ago = timezone.now() - timedelta(hours=1)
    Notice.objects.filter(pk__in=notices).update(enqueued_at=long_ago, deliver_after=long_ago)
    monkeypatch.setattr("notifications.delivery.broker_backlog", lambda: 0)
    return notices


def _deliver_all(queued: list[int]) -> None:
    dev.outbox.clear()
    for notice_id in queued:
        deliver(notice_id)


def _assert_each_sent_once(notices):
    assert sorted(sent["notice_id"] for sent in dev.outbox) == sorted(notices)
    assert set(Notice.objects.filter(pk__in=notices).values_list("status", flat=True)) == {Notice.Status.SENT}


@pytest.mark.django_db
def test_notice_sweep_twice_delivers_each_notice_once__N5(alice, bernard, david, monkeypatch, settings):
    notices = _lost_notices([alice, bernard], david, monkeypatch, settings)
    queued = []
    monkeypatch.setattr(
        "notifications.outbox.enqueue_delivery", lambda notice_id, profile_id=None: queued.append(notice_id)
    )
    assert [notice_tasks.sweep_notices(), notice_tasks.sweep_notices()] == [2, 0]  # within the grace: not again
    _deliver_all(queued)
    _assert_each_sent_once(notices)


@pytest.mark.django_db(transaction=True)
def test_notice_sweep_twice_at_once_delivers_each_notice_once__N5(alice, bernard, david, monkeypatch, settings):
    """Two sweeps at once may both queue a notice; its delivery claim lets one run through."""
    notices = _lost_notices([alice, bernard], david, monkeypatch, settings)
    queued = []
    monkeypatch.setattr(
        "notifications.outbox.enqueue_delivery", lambda notice_id, profile_id=None: queued.append(notice_id)
    )
    assert 2 <= sum(at_once(notice_tasks.sweep_notices)) <= 4
    dev.outbox.clear()
    assert at_once(lambda: _deliver_all_in_thread(queued), runs=2)  # both runs deliver every queued id
    _assert_each_sent_once(notices)


def _deliver_all_in_thread(queued: list[int]) -> bool:
    for notice_id in queued:
        deliver(notice_id)
    return True


def _letter_batch_case(bernard, david, settings):
    settings.CARNET_NOTICE_CHANNEL_OVERRIDE = None
    for _ in range(2):
        deliver(consult(bernard, david, kind=Notice.Kind.EMERGENCY).pk)  # not folded: two letters
    batch = PrintBatch.objects.get()
    PrintBatch.objects.filter(pk=batch.pk).update(day=timezone.localdate() - timedelta(days=1))
    return batch


def _assert_filed_once(batch):
    batch.refresh_from_db()
    assert batch.status == PrintBatch.Status.CLOSED and batch.letter_count == 2
    assert Letter.objects.filter(batch=batch).count() == 2
    parts = list(BatchFile.objects.filter(batch=batch).values_list("part", flat=True))
    assert sorted(parts) == sorted(set(parts)) and parts  # each part of the batch once


@pytest.mark.django_db
def test_closing_letter_batches_twice_files_once__N4(bernard, david, settings):
    batch = _letter_batch_case(bernard, david, settings)
    assert [notice_tasks.close_letter_batches(), notice_tasks.close_letter_batches()] == [[batch.pk], []]
    _assert_filed_once(batch)


@pytest.mark.django_db(transaction=True)
def test_closing_letter_batches_twice_at_once_files_once__N4(bernard, david, settings):
    batch = _letter_batch_case(bernard, david, settings)
    files_before = BatchFile.objects.count()
    at_once(notice_tasks.close_letter_batches)
    _assert_filed_once(batch)
    assert BatchFile.objects.count() > files_before


# --- records: the worker's heartbeat -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_heartbeat_twice_keeps_one_row():
    at_once(worker_heartbeat)
    worker_heartbeat()
    assert WorkerHeartbeat.objects.count() == 1
