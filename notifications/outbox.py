"""Writing notices into the outbox (N5) from inside an action's transaction.

``queue_notice`` picks the channel (N2), folds repeated consultations by one practitioner within the debounce
window into one notice (N1; a window whose notice failed starts a follow-up instead), queues the treating
doctor's notice for an emergency (N3, never folded), and enqueues the delivery after commit with the notice id
only (the notices of one commit together, in batches from three: ``enqueue_deliveries``). The upsert of the
notice (with the trail entry's INSERT, ``access_control.trail.entry_insert``) is written by hand in
``notifications.fast_sql``, beside its ORM reference. See docs/adr/0002-notice-outbox.md.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from access_control.models import TrailEntry
from access_control.trail import save_entry

from .fast_sql import DEAD_STATUSES, upsert_notice, upsert_notice_orm
from .models import Notice

if TYPE_CHECKING:  # imported where used at run time (records imports the outbox)
    from practitioners.models import Practitioner
    from records.models import Profile

logger = logging.getLogger(__name__)

# Kinds that fold (N1); every other kind is told on its own (N3 and the lifecycle confirmations).
_FOLDED_KINDS = {Notice.Kind.CONSULTATION}


def choose_channel(profile: Profile | SimpleNamespace, kind: str | None = None) -> str:
    """N2: e-mail for an activated profile with a verified e-mail that prefers it, else a postal letter.

    L1: the pre-opening notice goes by e-mail when the roster has an address for the person (it cannot have
    been verified yet: the person has no account), else by post. ``profile``: a profile, or the values of its row
    (``records.enrolment_copy`` chooses before the row exists).
    """
    from records.models import Profile

    if kind == Notice.Kind.PRE_OPENING and profile.email and profile.state == Profile.State.PENDING:
        return Notice.Channel.EMAIL
    if kind == Notice.Kind.PRE_OPENING and profile.state == Profile.State.ACTIVE:
        # A recovery code (accounts.recovery) goes by post only: the one who asks may have lost the mailbox.
        has_address = profile.postal_code and profile.city and (profile.address_street or profile.address_locality)
        return Notice.Channel.LETTER if has_address else Notice.Channel.NONE
    if (
        profile.state == Profile.State.ACTIVE
        and profile.email
        and profile.email_verified
        and profile.preferred_channel == Profile.Channel.EMAIL
    ):
        return Notice.Channel.EMAIL
    if profile.postal_code and profile.city and (profile.address_street or profile.address_locality):
        return Notice.Channel.LETTER
    if profile.email and profile.email_verified:
        return Notice.Channel.EMAIL
    return Notice.Channel.NONE


def recipient_channel(
    profile: Profile, recipient_practitioner: Practitioner | None = None, kind: str | None = None
) -> str:
    """The patient's channel (N2), or e-mail for a practitioner recipient (the treating doctor, N3)."""
    if recipient_practitioner is not None:
        return Notice.Channel.EMAIL if recipient_practitioner.email else Notice.Channel.NONE
    return choose_channel(profile, kind)


def window_start(now: datetime) -> datetime | None:
    """Start of the debounce window holding ``now``: windows are aligned on local midnight ("the same day")."""
    hours = settings.CARNET_NOTICE_DEBOUNCE_HOURS
    if hours <= 0:
        return None
    local = timezone.localtime(now)
    if 24 % hours == 0:
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + timedelta(hours=(local.hour // hours) * hours)
    window = timedelta(hours=hours)
    epoch = local.replace(year=2000, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return epoch + ((local - epoch) // window) * window


def _get_or_create_locked(
    dedupe_key: str, defaults: dict[str, Any], *, trail_entry: TrailEntry | None = None, folded: bool = False
) -> tuple[Notice, bool, bool]:
    """``(notice, created, linked)``: the notice with this key, locked, created if missing, linked to ``trail_entry``.

    PostgreSQL: the hand-written upsert (one statement, which also inserts an unsaved entry).
    """
    if connections[Notice.objects.db].vendor == "postgresql":
        return upsert_notice(dedupe_key, defaults, trail_entry=trail_entry, folded=folded)
    return upsert_notice_orm(dedupe_key, defaults, trail_entry=trail_entry, folded=folded)


def queue_notice(
    profile: Profile,
    kind: str,
    *,
    practitioner: Practitioner | None = None,
    trail_entry: TrailEntry | None = None,
    recipient_practitioner: Practitioner | None = None,
    sealed_payload: bytes | None = None,
    dedupe_key: str | None = None,
) -> Notice:
    """Create (or, for a repeated consultation, extend) a notice. Call inside the action's transaction.

    Returns the patient's notice (or the practitioner's when ``recipient_practitioner`` is given). For an
    emergency notice to the patient, the treating doctor's notice (N3) is queued too, with a dedupe key a
    caller queueing it explicitly would produce as well (so it is never doubled when ``trail_entry`` is given).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("queue_notice must be called inside the action's transaction (rule N5).")
    now = timezone.now()
    channel = recipient_channel(profile, recipient_practitioner, kind)
    folded = False
    if dedupe_key is None:
        window = window_start(now) if kind in _FOLDED_KINDS else None
        if window is not None and practitioner is not None and recipient_practitioner is None:
            # N1: one notice per practitioner, profile and debounce window.
            dedupe_key = f"{kind}:{profile.pk}:{practitioner.pk}:{window:%Y%m%d%H%M}"
            folded = True
        else:
            if trail_entry is not None and trail_entry.pk is None:
                save_entry(trail_entry)  # its id goes into the key
            ref = trail_entry.pk if trail_entry is not None else f"{now:%Y%m%d%H%M%S%f}"
            recipient = f"p{recipient_practitioner.pk}" if recipient_practitioner is not None else "patient"
            dedupe_key = f"{kind}:{profile.pk}:{recipient}:{ref}"
    status = Notice.Status.UNDELIVERABLE if channel == Notice.Channel.NONE else Notice.Status.PENDING
    defaults = {
        "kind": kind,
        "profile": profile,
        "practitioner": practitioner,
        "recipient_practitioner": recipient_practitioner,
        "channel": channel,
        "status": status,
        "created_at": now,
        "deliver_after": now,
        "enqueued_at": now,
        "sealed_payload": sealed_payload,
    }
    key = dedupe_key
    for follow_up in range(2, 100):
        notice, created, linked = _get_or_create_locked(key, defaults, trail_entry=trail_entry, folded=folded)
        if created or not folded or notice.status not in DEAD_STATUSES:
            break
        key = f"{dedupe_key}:{follow_up}"
    if trail_entry is not None and not linked:  # only after 99 dead follow-ups: keep the access attached anyway
        notice.trail_entries.add(trail_entry)
    if created and status == Notice.Status.PENDING:
        _enqueue_after_commit(notice.pk, notice.profile_id)
    if kind == Notice.Kind.EMERGENCY and recipient_practitioner is None:
        doctor = profile.treating_doctor
        if doctor is not None and (practitioner is None or doctor.pk != practitioner.pk):
            queue_notice(
                profile, kind, practitioner=practitioner, trail_entry=trail_entry, recipient_practitioner=doctor
            )
    return notice


# From this many notices committed together, they go to the worker in batches (``deliver_notices``).
BATCH_FROM = 3


class _AfterCommit:
    """The on-commit hand-off of the notices one transaction queued (one callback for all of them)."""

    def __init__(self, notice_id: int, profile_id: int | None, savepoints: tuple[str, ...]):
        self.pairs = [(notice_id, profile_id)]
        self.savepoints = savepoints  # the atomic block it was registered in: only notices of that block join
        self.done = False

    def __call__(self) -> None:
        self.done = True
        if len(self.pairs) < BATCH_FROM:  # an action's one or two notices: one message each, as always
            for notice_id, profile_id in self.pairs:
                enqueue_delivery(notice_id, profile_id)
        else:
            enqueue_deliveries(self.pairs)


def _enqueue_after_commit(notice_id: int, profile_id: int | None) -> None:
    """Hand the notice to the broker once the transaction commits, with the others it queued (one callback).

    A notice joins the previous notice's callback when both were queued at the same depth of the same atomic
    block (the same savepoints, or sibling savepoints of one parent, as when a batch runs one action per
    savepoint). That is safe: Django drops a callback with any savepoint open at its registration, and a
    savepoint still open when this notice is queued holds this notice too; a sibling savepoint rolled back after
    joining leaves its notice's id in the callback, and the worker, finding no row to claim, skips it. Notices of
    an outer or inner block get a callback of their own, so each hand-off stays within what it can see commit.
    """
    connection = transaction.get_connection()
    savepoints = tuple(connection.savepoint_ids)
    if connection.run_on_commit:  # Django's list of (savepoint ids, callback, robust); tests pin what we read
        last = connection.run_on_commit[-1][1]
        if (
            isinstance(last, _AfterCommit)
            and not last.done
            and len(last.savepoints) == len(savepoints)
            and last.savepoints[:-1] == savepoints[:-1]
        ):
            last.pairs.append((notice_id, profile_id))
            return
    transaction.on_commit(_AfterCommit(notice_id, profile_id, savepoints))


def enqueue_deliveries(pairs: list[tuple[int, int | None]]) -> None:
    """Hand notices to the broker in messages of CARNET_NOTICE_BATCH_SIZE ``[notice_id, profile_id]`` pairs.

    A broker failure is logged, not raised: the sweep re-queues the notices (N5).
    """
    from .tasks import deliver_notices

    size = settings.CARNET_NOTICE_BATCH_SIZE
    for start in range(0, len(pairs), size):
        batch = pairs[start : start + size]
        if len(batch) == 1:
            enqueue_delivery(*batch[0])
            continue
        try:
            deliver_notices.apply_async(args=[[list(pair) for pair in batch]], retry=False)
        except Exception:  # the broker is down or misconfigured; the notices stay pending for the sweep
            logger.warning("Could not enqueue %s notices; the sweep will re-queue them.", len(batch), exc_info=True)


def enqueue_delivery(notice_id: int, profile_id: int | None = None) -> None:
    """Hand the notice id to the broker. A broker failure is logged, not raised: the sweep retries (N5).

    With its profile's id beside it (ids only), the claim is routed to the notice's shard on Citus.
    """
    from .tasks import deliver_notice

    try:
        deliver_notice.apply_async(args=[notice_id] if profile_id is None else [notice_id, profile_id], retry=False)
    except Exception:  # the broker is down or misconfigured; the notice stays pending for the sweep
        logger.warning("Could not enqueue notice %s; the sweep will re-queue it.", notice_id, exc_info=True)
