"""Delivering one notice (N5): claim it, send it through its channel, record the outcome.

A run claims the notice with one conditional UPDATE and only the run that changed the row sends; a transient
failure puts it back to ``pending`` with backoff, the others end ``failed`` or ``undeliverable``; ``sweep``
re-queues what the broker or a worker lost. Errors stored never carry patient data.
See docs/adr/0002-notice-outbox.md.
"""

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from .channels import channel_for
from .channels.base import PermanentDeliveryError, TransientDeliveryError, UndeliverableError
from .content import notices_for_delivery
from .models import Notice

logger = logging.getLogger(__name__)


class RetryDelivery(Exception):  # noqa: N818  (a signal to the task, not an error of the caller)
    """The notice went back to ``pending`` after a transient failure; retry after ``countdown`` seconds."""

    def __init__(self, notice_id: int, countdown: float, reason: str):
        super().__init__(f"notice {notice_id}: {reason}; retry in {countdown:.0f} s")
        self.notice_id = notice_id
        self.countdown = countdown


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, capped."""
    base = settings.CARNET_NOTICE_RETRY_BASE_SECONDS
    ceiling: float = min(settings.CARNET_NOTICE_RETRY_MAX_SECONDS, base * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def claimable(now: datetime) -> Q:
    stale = now - timedelta(seconds=settings.CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS)
    return Q(status=Notice.Status.PENDING, deliver_after__lte=now) | Q(
        status=Notice.Status.SENDING, claimed_at__lt=stale
    )


def claim(notice_id: int) -> datetime | None:
    """Take the notice for this run. Returns the claim time, or None when another run has it or it is done."""
    now = timezone.now()
    claimed = Notice.objects.filter(claimable(now), pk=notice_id).update(
        status=Notice.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
    )
    return now if claimed else None


def deliver(notice_id: int) -> str:
    """Deliver one notice if it is due and nobody else holds it. Returns the outcome (a status or "skipped")."""
    claimed_at = claim(notice_id)
    if claimed_at is None:
        return "skipped"
    notice = notices_for_delivery().get(pk=notice_id)
    mine = Notice.objects.filter(pk=notice_id, status=Notice.Status.SENDING, claimed_at=claimed_at)
    try:
        channel_for(notice).send(notice)
    except UndeliverableError as exc:
        return _finish(mine, notice_id, Notice.Status.UNDELIVERABLE, exc.reason)
    except PermanentDeliveryError as exc:
        return _finish(mine, notice_id, Notice.Status.FAILED, exc.reason)
    except TransientDeliveryError as exc:
        return _retry_or_fail(mine, notice, exc.reason)
    except Exception as exc:
        # A bug or an unexpected outage: keep the class name only (messages may quote patient data).
        logger.exception("Unexpected error delivering notice %s.", notice_id)
        return _retry_or_fail(mine, notice, f"unexpected {type(exc).__name__}")
    now = timezone.now()
    if not mine.update(status=Notice.Status.SENT, sent_at=now, sealed_payload=None, last_error="", updated_at=now):
        logger.warning("Notice %s was sent but its claim had been taken over.", notice_id)
    return Notice.Status.SENT


def _finish(mine: QuerySet[Notice], notice_id: int, status: str, reason: str) -> str:
    mine.update(status=status, last_error=reason, updated_at=timezone.now())
    logger.warning("Notice %s is %s: %s.", notice_id, status, reason)
    return status


def _retry_or_fail(mine: QuerySet[Notice], notice: Notice, reason: str) -> str:
    if notice.attempts >= settings.CARNET_NOTICE_MAX_ATTEMPTS:
        return _finish(mine, notice.pk, Notice.Status.FAILED, f"{reason} (after {notice.attempts} attempts)")
    countdown = backoff_seconds(notice.attempts)
    now = timezone.now()
    mine.update(
        status=Notice.Status.PENDING,
        last_error=reason,
        deliver_after=now + timedelta(seconds=countdown),
        enqueued_at=now + timedelta(seconds=countdown),  # the task's retry message is the next enqueue
        updated_at=now,
    )
    logger.info("Notice %s: %s; attempt %s, retry in %.0f s.", notice.pk, reason, notice.attempts, countdown)
    raise RetryDelivery(notice.pk, countdown, reason)


def sweep(now: datetime | None = None) -> list[int]:
    """Re-queue what the broker or a worker lost (N5). Returns the ids handed to the broker.

    1. ``sending`` for longer than the claim timeout (worker killed mid-delivery) goes back to ``pending``;
    2. ``pending``, due, and last handed to the broker longer ago than the grace period (the broker was down
       at commit, or lost the message) is enqueued again. A duplicate message is harmless: the claim lets
       one run through; the grace period keeps a long queue from being re-filled every minute.
    """
    from .outbox import enqueue_delivery

    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS)
    reset = Notice.objects.filter(status=Notice.Status.SENDING, claimed_at__lt=stale).update(
        status=Notice.Status.PENDING,
        last_error="interrupted (worker lost)",
        deliver_after=now,
        enqueued_at=None,  # its message died with the worker: re-queue it now
        updated_at=now,
    )
    if reset:
        logger.warning("Sweep: %s notices abandoned in sending are pending again.", reset)
    quiet_since = now - timedelta(seconds=settings.CARNET_NOTICE_SWEEP_GRACE_SECONDS)
    ids = list(
        Notice.objects.filter(status=Notice.Status.PENDING, deliver_after__lte=now)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=quiet_since))
        .order_by("deliver_after")
        .values_list("pk", flat=True)[: settings.CARNET_NOTICE_SWEEP_BATCH]
    )
    if ids:
        Notice.objects.filter(pk__in=ids).update(enqueued_at=now)
    for notice_id in ids:
        enqueue_delivery(notice_id)
    if ids:
        logger.info("Sweep: %s pending notices re-queued.", len(ids))
    return ids
