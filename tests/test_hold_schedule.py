"""The hold schedule (A8): a reminder to the patient after 14 days, automatic release after 30 days."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings

from access_control.models import TrailEntry
from access_control.tasks import (
    ACTION_HOLD_RELEASE,
    ACTION_HOLD_REMINDER,
    release_expired_holds,
    send_hold_reminders,
)
from access_control.trail import verify_chain
from notifications.models import Notice
from records.models import Profile
from tests.trail_fixtures import make_document, make_practitioner, make_profile

pytestmark = pytest.mark.django_db

DEPOSIT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _held(profile, author, *, held_days=30, **fields):
    return make_document(
        profile, author, deposited_at=DEPOSIT, held_until=DEPOSIT + timedelta(days=held_days), **fields
    )


@pytest.fixture
def author():
    return make_practitioner()


def _at(moment):
    return time_machine.travel(moment, tick=False)


def test_no_reminder_before_fourteen_days__A8(author):
    document = _held(make_profile(), author)
    with _at(DEPOSIT + timedelta(days=13, hours=23)):
        assert send_hold_reminders(DEPOSIT + timedelta(days=13, hours=23)) == 0
    document.refresh_from_db()
    assert document.hold_reminder_sent_at is None
    assert not Notice.objects.exists()


def test_patient_is_told_once_after_fourteen_days__A8(author):
    profile = make_profile()
    first, second = _held(profile, author), _held(profile, author)
    other_profile_document = _held(make_profile(), author)
    now = DEPOSIT + timedelta(days=settings.CARNET_HOLD_REMINDER_DAYS, minutes=1)
    with _at(now):
        assert send_hold_reminders(now) == 3
        assert send_hold_reminders(now) == 0  # once only
    for document in (first, second, other_profile_document):
        document.refresh_from_db()
        assert document.hold_reminder_sent_at == now
        assert document.is_held  # the reminder does not release
    notice = Notice.objects.get(profile=profile)  # two documents, one letter
    assert notice.kind == Notice.Kind.HOLD_REMINDER
    assert notice.channel == Notice.Channel.LETTER
    entries = TrailEntry.objects.filter(profile=profile, action=ACTION_HOLD_REMINDER)
    assert sorted(e.document_id for e in entries) == [first.pk, second.pk]
    assert {e.actor_kind for e in entries} == {TrailEntry.ActorKind.SYSTEM}
    assert set(notice.trail_entries.all()) == set(entries)
    assert Notice.objects.count() == 2
    assert verify_chain(profile.pk) == []


def test_no_reminder_for_a_released_deleted_or_closed_record__A8(author):
    released = _held(make_profile(), author, hold_released_at=DEPOSIT + timedelta(days=1))
    deleted = _held(make_profile(), author, deleted_at=DEPOSIT + timedelta(days=1))
    closed = _held(make_profile(state=Profile.State.CLOSED), author)
    now = DEPOSIT + timedelta(days=20)
    with _at(now):
        assert send_hold_reminders(now) == 0
    for document in (released, deleted, closed):
        document.refresh_from_db()
        assert document.hold_reminder_sent_at is None
    assert not Notice.objects.exists()


def test_document_becomes_visible_by_itself_after_thirty_days__A8(author):
    profile = make_profile()
    document = _held(profile, author, held_days=365)  # the hold can never outlast the legal 30 days
    before = DEPOSIT + timedelta(days=settings.CARNET_HOLD_RELEASE_DAYS) - timedelta(seconds=1)
    with _at(before):
        assert release_expired_holds(before) == 0
    now = DEPOSIT + timedelta(days=settings.CARNET_HOLD_RELEASE_DAYS)
    with _at(now):
        assert release_expired_holds(now) == 1
        assert release_expired_holds(now) == 0
    document.refresh_from_db()
    assert document.hold_released_at == now and not document.is_held
    entry = TrailEntry.objects.get(profile=profile, action=ACTION_HOLD_RELEASE)
    assert (entry.document_id, entry.actor_kind, entry.at) == (document.pk, TrailEntry.ActorKind.SYSTEM, now)
    assert verify_chain(profile.pk) == []


def test_hold_ends_at_its_own_date_when_earlier__A8(author):
    short = _held(make_profile(), author, held_days=3)
    long = _held(make_profile(), author, held_days=30)
    now = DEPOSIT + timedelta(days=3)
    with _at(now):
        assert release_expired_holds(now) == 1
    short.refresh_from_db()
    long.refresh_from_db()
    assert short.hold_released_at == now and long.hold_released_at is None


def test_many_documents_are_released_in_batches__A8(author, monkeypatch):
    monkeypatch.setattr("access_control.tasks.BATCH_SIZE", 2)
    profiles = [make_profile() for _ in range(3)]
    for profile in profiles:
        _held(profile, author)
        _held(profile, author)
    now = DEPOSIT + timedelta(days=31)
    with _at(now):
        assert release_expired_holds(now) == 6
    assert TrailEntry.objects.filter(action=ACTION_HOLD_RELEASE).count() == 6
    assert all(verify_chain(profile.pk) == [] for profile in profiles)


def test_hold_rules_are_scheduled__A8():
    from access_control import tasks

    for task in (tasks.send_hold_reminders_task, tasks.release_expired_holds_task):
        assert settings.CELERY_BEAT_SCHEDULE[task.name]["task"] == task.name
        assert task.name.startswith("access_control.")
