"""Scheduled rules of access control: the hold (A8) reminder at 14 days and automatic release at 30 days.

The high-profile review alerts (A13) live in ``access_control.alerts`` and are imported here for the worker.

Each rule is a plain function of ``now`` (tested with frozen time) wrapped by a Celery task that beat runs
(``settings.CELERY_BEAT_SCHEDULE``). Documents are claimed in set-based batches under row locks
(``SKIP LOCKED``, so two runs never take the same rows) and changed with one UPDATE per batch; each document
gets its own trail entry by the system (T1) in the same transaction, and the reminder notices are queued in it
too (N5). A batch that fails rolls back whole and is taken again by the next run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .alerts import alert_review_task, sweep_review_alerts_task  # noqa: F401  (registered with the worker)
from .trail import record_entry

if TYPE_CHECKING:  # imported inside the functions at run time, like the models below
    from records.models import Document

logger = logging.getLogger(__name__)

ACTION_HOLD_REMINDER = "hold_reminder"
ACTION_HOLD_RELEASE = "hold_release"
BATCH_SIZE = 500


def _held_documents() -> QuerySet[Document]:
    from records.models import Document

    return Document.objects.filter(held_until__isnull=False, hold_released_at__isnull=True, deleted_at__isnull=True)


def _claim(queryset: QuerySet[Document]) -> list[tuple[int, int]]:
    """Lock one batch of due documents, in pk order; returns (document id, profile id) pairs."""
    locked = queryset.select_for_update(skip_locked=True, of=("self",)).order_by("pk")
    return list(locked.values_list("pk", "profile_id")[:BATCH_SIZE])


def send_hold_reminders(now: datetime) -> int:
    """A8: a document still held CARNET_HOLD_REMINDER_DAYS after its deposit → tell the patient once.

    One notice per profile and run (a letter costs money: two documents held the same day make one letter),
    "your record was updated, please see a practitioner" — no clinical content (N6). Returns the number of
    documents reminded.
    """
    from notifications.models import Notice
    from notifications.outbox import queue_notice
    from records.models import Document, Profile

    due = _held_documents().filter(
        hold_reminder_sent_at__isnull=True,
        deposited_at__lte=now - timedelta(days=settings.CARNET_HOLD_REMINDER_DAYS),
        profile__state__in=[Profile.State.OPEN, Profile.State.ACTIVE],
    )
    done = 0
    while True:
        with transaction.atomic():
            batch = _claim(due)
            if not batch:
                return done
            Document.objects.filter(pk__in=[pk for pk, _ in batch]).update(hold_reminder_sent_at=now)
            by_profile: dict[int, list[int]] = defaultdict(list)
            for document_id, profile_id in batch:
                by_profile[profile_id].append(document_id)
            profiles = Profile.objects.in_bulk(list(by_profile))
            for profile_id in sorted(by_profile):
                profile = profiles[profile_id]
                entries = [
                    record_entry(
                        profile=profile, action=ACTION_HOLD_REMINDER, actor=None, document=Document(pk=document_id)
                    )
                    for document_id in by_profile[profile_id]
                ]
                notice = queue_notice(
                    profile,
                    Notice.Kind.HOLD_REMINDER,
                    trail_entry=entries[0],
                    dedupe_key=f"{Notice.Kind.HOLD_REMINDER}:{profile_id}:{by_profile[profile_id][0]}",
                )
                notice.trail_entries.add(*entries[1:])
            done += len(batch)
            logger.info("Hold reminders: %d documents in %d profiles.", len(batch), len(by_profile))


def release_expired_holds(now: datetime) -> int:
    """Release the holds that ended (A8) and return the number of documents released.

    A hold ends by itself at ``held_until`` and at the latest CARNET_HOLD_RELEASE_DAYS after the deposit; the
    document becomes visible to the patient.
    """
    from records.models import Document, Profile

    due = _held_documents().filter(
        Q(held_until__lte=now) | Q(deposited_at__lte=now - timedelta(days=settings.CARNET_HOLD_RELEASE_DAYS))
    )
    done = 0
    while True:
        with transaction.atomic():
            batch = _claim(due)
            if not batch:
                return done
            Document.objects.filter(pk__in=[pk for pk, _ in batch]).update(hold_released_at=now)
            for document_id, profile_id in sorted(batch, key=lambda pair: (pair[1], pair[0])):
                record_entry(
                    profile=Profile(pk=profile_id),
                    action=ACTION_HOLD_RELEASE,
                    actor=None,
                    document=Document(pk=document_id),
                )
            done += len(batch)
            logger.info("Holds released: %d documents.", len(batch))


@shared_task(name="access_control.send_hold_reminders")  # type: ignore[untyped-decorator]  # celery ships no types
def send_hold_reminders_task() -> int:
    return send_hold_reminders(timezone.now())


@shared_task(name="access_control.release_expired_holds")  # type: ignore[untyped-decorator]  # celery ships no types
def release_expired_holds_task() -> int:
    return release_expired_holds(timezone.now())
