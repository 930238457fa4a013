"""Delivering one notice (N5): claim it, send it through its channel, record the outcome.

A run claims the notice with one conditional UPDATE and only the run that changed the row sends; a transient
failure puts it back to ``pending`` with backoff, the others end ``failed`` or ``undeliverable``; ``sweep``
re-queues what the broker or a worker lost. Errors stored never carry patient data. ``deliver_batch`` does the
same for the notices of one message (notices committed together): one claim and one load for all, then each
notice handed off, sent and marked on its own.

At most once, as far as SMTP allows: before the hand-off the run commits ``send_started_at`` and the notice's
stable ``message_id``; after it, the run marks the row ``sent``. A worker killed between the two leaves a
``sending`` row with ``send_started_at`` set: "maybe sent, not marked". The sweep tells it from "never sent"
(``send_started_at`` empty: the worker died before the hand-off) and, either way, the next run sends with the
same Message-ID, so relays and mail clients that deduplicate on it show one message. What remains: SMTP has no
idempotent submission, so a relay that accepted the first copy may pass the second on; the recipient's client
then sees two copies of one message (docs/operations.md, "At most once").
See docs/adr/0002-notice-outbox.md.
"""

import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from time import monotonic

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


def _the_notice(notice_id: int, profile_id: int | None) -> QuerySet[Notice]:
    """The notice by its id, and its profile's when the message gave it (the notice's one shard on Citus)."""
    notices = Notice.objects.filter(pk=notice_id)
    return notices if profile_id is None else notices.filter(profile_id=profile_id)


def claim(notice_id: int, profile_id: int | None = None) -> datetime | None:
    """Take the notice for this run. Returns the claim time, or None when another run has it or it is done."""
    now = timezone.now()
    claimed = (
        _the_notice(notice_id, profile_id)
        .filter(claimable(now))
        .update(status=Notice.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now)
    )
    return now if claimed else None


def deliver(notice_id: int, profile_id: int | None = None) -> str:
    """Deliver one notice if it is due and nobody else holds it. Returns the outcome (a status or "skipped")."""
    claimed_at = claim(notice_id, profile_id)
    if claimed_at is None:
        return "skipped"
    notice = notices_for_delivery().get(pk=notice_id, **({} if profile_id is None else {"profile_id": profile_id}))
    return _send_claimed(notice, claimed_at)


def _send_claimed(notice: Notice, claimed_at: datetime) -> str:
    """Hand a notice this run claimed at ``claimed_at`` to its channel and record the outcome."""
    notice_id = notice.pk
    mine = _the_notice(notice_id, notice.profile_id).filter(status=Notice.Status.SENDING, claimed_at=claimed_at)
    channel = channel_for(notice)
    if notice.send_started_at is not None:
        logger.warning("Notice %s: an earlier hand-off was interrupted; sending again with the same id.", notice_id)
    # Committed before the hand-off (autocommit: the task runs outside any transaction).
    if not mine.update(send_started_at=timezone.now(), message_id=channel.message_id(notice)):
        return "skipped"  # the claim was taken over meanwhile
    try:
        channel.send(notice)
    except UndeliverableError as exc:
        return _finish(mine, notice_id, Notice.Status.UNDELIVERABLE, exc.reason)
    except PermanentDeliveryError as exc:
        return _finish(mine, notice_id, Notice.Status.FAILED, exc.reason)
    except TransientDeliveryError as exc:
        mine.update(send_started_at=None)  # the transport refused it: certainly not sent
        return _retry_or_fail(mine, notice, exc.reason)
    except Exception as exc:
        # A bug or an unexpected outage: keep the class name only (messages may quote patient data).
        logger.exception("Unexpected error delivering notice %s.", notice_id)
        return _retry_or_fail(mine, notice, f"unexpected {type(exc).__name__}")
    now = timezone.now()
    if not mine.update(status=Notice.Status.SENT, sent_at=now, sealed_payload=None, last_error="", updated_at=now):
        logger.warning("Notice %s was sent but its claim had been taken over.", notice_id)
    return Notice.Status.SENT


def _the_notices(pairs: Sequence[tuple[int, int | None]], notices: QuerySet[Notice] | None = None) -> QuerySet[Notice]:
    """The notices by their ids, and their profiles' when the message gave them (on Citus, their shards only)."""
    notices = (Notice.objects.all() if notices is None else notices).filter(pk__in=[pk for pk, _ in pairs])
    profile_ids = {profile_id for _, profile_id in pairs}
    return notices if None in profile_ids else notices.filter(profile_id__in=profile_ids)


def claim_batch(pairs: Sequence[tuple[int, int | None]]) -> datetime | None:
    """Take those of the notices that are due and free for this run, in one UPDATE. Returns the claim time."""
    now = timezone.now()
    claimed = (
        _the_notices(pairs)
        .filter(claimable(now))
        .update(status=Notice.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now)
    )
    return now if claimed else None


def deliver_batch(pairs: Sequence[tuple[int, int | None]]) -> dict[int, str]:
    """Deliver the notices of one message: one claim and one load for all, then each as ``deliver`` does.

    Every notice is claimed before its hand-off, marked ``sent`` right after its own send (never at the end of
    the batch), and a transient failure re-queues that notice alone (``deliver_notice`` after its backoff), so
    the guarantees of ``deliver`` hold notice by notice. What is not started within half the task's time limit
    goes back to ``pending`` (never handed off) and to the broker in a new message.
    Returns each notice's outcome ("skipped": another run has it, or it is done).
    """
    outcomes = {notice_id: "skipped" for notice_id, _ in pairs}
    claimed_at = claim_batch(pairs)
    if claimed_at is None:
        return outcomes
    notices = list(
        _the_notices(pairs, notices_for_delivery())
        .filter(status=Notice.Status.SENDING, claimed_at=claimed_at)
        .order_by("pk")
    )
    stop_at = monotonic() + settings.CARNET_NOTICE_TASK_TIME_LIMIT_SECONDS / 2
    for index, notice in enumerate(notices):
        if monotonic() > stop_at:
            _release(notices[index:], claimed_at)
            break
        try:
            outcomes[notice.pk] = _send_claimed(notice, claimed_at)
        except RetryDelivery as exc:
            outcomes[notice.pk] = Notice.Status.PENDING
            _retry_later(notice, exc.countdown)
    return outcomes


def _retry_later(notice: Notice, countdown: float) -> None:
    """Queue the one notice's retry after its backoff; should the broker refuse, the sweep re-queues it."""
    from .tasks import deliver_notice

    try:
        deliver_notice.apply_async(args=[notice.pk, notice.profile_id], countdown=countdown, retry=False)
    except Exception:
        logger.warning("Could not queue the retry of notice %s; the sweep will.", notice.pk, exc_info=True)


def _release(notices: list[Notice], claimed_at: datetime) -> None:
    """Give back notices this run claimed but did not start (never handed off), and queue them again."""
    from .outbox import enqueue_deliveries

    now = timezone.now()
    released = Notice.objects.filter(
        pk__in=[notice.pk for notice in notices], status=Notice.Status.SENDING, claimed_at=claimed_at
    ).update(
        status=Notice.Status.PENDING, attempts=F("attempts") - 1, deliver_after=now, enqueued_at=now, updated_at=now
    )
    logger.info("Batch out of time: %s claimed notices go back to the queue.", released)
    enqueue_deliveries([(notice.pk, notice.profile_id) for notice in notices])  # one taken over meanwhile: skipped


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


MAYBE_SENT = "interrupted during the hand-off (maybe sent; resent with the same Message-ID)"


def broker_backlog() -> int | None:
    """Messages waiting in the delivery queue of the broker, or None when the broker cannot say."""
    from celery import current_app

    queue = current_app.conf.task_default_queue
    try:
        with current_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            # Not passive: Redis forgets an empty list, and an empty queue is the answer we look for.
            return int(connection.default_channel.queue_declare(queue=queue).message_count)
    except Exception:  # the broker is down: keep the long grace
        logger.info("Sweep: could not read the broker's queue length.", exc_info=True)
        return None


def sweep(now: datetime | None = None) -> list[int]:
    """Re-queue what the broker or a worker lost (N5). Returns the ids handed to the broker.

    1. ``sending`` for longer than the claim timeout (worker killed mid-delivery; the timeout is just above the
       task's hard time limit, so no live run still holds it) goes back to ``pending``, noting whether the
       hand-off had started ("maybe sent": the next run uses the same Message-ID);
    2. ``pending``, due, and last handed to the broker longer ago than the grace period (the broker was down
       at commit, or lost the message) is enqueued again. A duplicate message is harmless: the claim lets
       one run through. The grace is short (``CARNET_NOTICE_SWEEP_GRACE_SECONDS``) while the broker's queue
       is empty, since a due notice then has no message waiting; while a backlog is queued it is long
       (``CARNET_NOTICE_SWEEP_BACKLOG_GRACE_SECONDS``), so that a long queue is not re-filled every minute.
    """
    from .outbox import enqueue_delivery

    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS)
    abandoned = Notice.objects.filter(status=Notice.Status.SENDING, claimed_at__lt=stale)
    reset = {}
    for started, reason in ((False, "interrupted before the hand-off (worker lost)"), (True, MAYBE_SENT)):
        reset[started] = abandoned.filter(send_started_at__isnull=not started).update(
            status=Notice.Status.PENDING,
            last_error=reason,
            deliver_after=now,
            enqueued_at=None,  # its message died with the worker: re-queue it now
            updated_at=now,
        )
    if reset[False] or reset[True]:
        logger.warning(
            "Sweep: %s notices abandoned in sending are pending again (%s maybe sent, resent with the same id).",
            reset[False] + reset[True],
            reset[True],
        )
    backlog = broker_backlog()
    grace = settings.CARNET_NOTICE_SWEEP_GRACE_SECONDS
    if backlog is None or backlog > 0:
        grace = max(grace, settings.CARNET_NOTICE_SWEEP_BACKLOG_GRACE_SECONDS)
    quiet_since = now - timedelta(seconds=grace)
    due = list(
        Notice.objects.filter(status=Notice.Status.PENDING, deliver_after__lte=now)
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=quiet_since))
        .order_by("deliver_after")
        .values_list("pk", "profile_id")[: settings.CARNET_NOTICE_SWEEP_BATCH]
    )
    ids = [notice_id for notice_id, _profile_id in due]
    if ids:
        Notice.objects.filter(pk__in=ids).update(enqueued_at=now)
    for notice_id, profile_id in due:
        enqueue_delivery(notice_id, profile_id)
    if ids:
        logger.info("Sweep: %s pending notices re-queued.", len(ids))
    return ids
