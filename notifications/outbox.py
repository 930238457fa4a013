"""Writing notices into the outbox (N5) from inside an action's transaction.

``queue_notice`` picks the channel (N2), folds repeated consultations into one notice (N1), and arranges for
the delivery task to be enqueued after commit with the notice id only. If the broker is unreachable at that
moment the notice simply stays ``pending``: the periodic sweep re-queues it (nothing is lost).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Notice

logger = logging.getLogger(__name__)

# Kinds that are never folded: each one is told on its own (N3 and the lifecycle confirmations).
_FOLDED_KINDS = {Notice.Kind.CONSULTATION}


def choose_channel(profile) -> str:
    """N2: e-mail for an activated profile with a verified e-mail that prefers it, else a postal letter."""
    from records.models import Profile

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


def _window_start(now):
    hours = settings.CARNET_NOTICE_DEBOUNCE_HOURS
    if hours <= 0:
        return None
    window = timedelta(hours=hours)
    epoch = now.replace(year=2000, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return epoch + ((now - epoch) // window) * window


def queue_notice(
    profile,
    kind: str,
    *,
    practitioner=None,
    trail_entry=None,
    recipient_practitioner=None,
    sealed_payload: bytes | None = None,
    dedupe_key: str | None = None,
) -> Notice:
    """Create (or, for a repeated consultation, extend) a notice. Call inside the action's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("queue_notice must be called inside the action's transaction (rule N5).")
    now = timezone.now()
    if recipient_practitioner is not None:
        channel = Notice.Channel.EMAIL if recipient_practitioner.email else Notice.Channel.NONE
    else:
        channel = choose_channel(profile)
    if dedupe_key is None:
        window = _window_start(now) if kind in _FOLDED_KINDS else None
        if window is not None and practitioner is not None:
            # N1: one notice per practitioner, profile and debounce window.
            dedupe_key = f"{kind}:{profile.pk}:{practitioner.pk}:{window:%Y%m%d%H%M}"
        else:
            ref = trail_entry.pk if trail_entry is not None else f"{now:%Y%m%d%H%M%S%f}"
            recipient = f"p{recipient_practitioner.pk}" if recipient_practitioner is not None else "patient"
            dedupe_key = f"{kind}:{profile.pk}:{recipient}:{ref}"
    status = Notice.Status.UNDELIVERABLE if channel == Notice.Channel.NONE else Notice.Status.PENDING
    notice, created = Notice.objects.select_for_update().get_or_create(
        dedupe_key=dedupe_key,
        defaults={
            "kind": kind,
            "profile": profile,
            "practitioner": practitioner,
            "recipient_practitioner": recipient_practitioner,
            "channel": channel,
            "status": status,
            "created_at": now,
            "deliver_after": now,
            "sealed_payload": sealed_payload,
        },
    )
    if trail_entry is not None:
        notice.trail_entries.add(trail_entry)
    if created and status == Notice.Status.PENDING:
        notice_id = notice.pk
        transaction.on_commit(lambda: enqueue_delivery(notice_id))
    return notice


def enqueue_delivery(notice_id: int) -> None:
    """Hand the notice id to the broker. A broker failure is logged, not raised: the sweep retries (N5)."""
    from .tasks import deliver_notice

    try:
        deliver_notice.apply_async(args=[notice_id], retry=False)
    except Exception:  # the broker is down or misconfigured; the notice stays pending for the sweep
        logger.warning("Could not enqueue notice %s; the sweep will re-queue it.", notice_id, exc_info=True)
