"""The scheduled lifecycle rules run by ``records.tasks``: openings (L3), closures (L7) and the purge (L5, T4).

Each walks its due profiles in pk order, ``CHUNK_SIZE`` at a time (keyset walk, no OFFSET), and commits as it
goes: one durable transaction per chunk (openings) or per profile (closures, purges), so that a long run never
holds its locks for long and cannot be folded into a caller's transaction. Rows another transaction holds are
skipped (``skip_locked``): the next run sees them.

Early deletion (L5): ``do_request_early_deletion`` brings ``archive_until`` forward, so the same indexed query
finds every due purge; the purge job runs hourly, so the deletion happens within the hour after that date.
"""

import logging
from collections.abc import Iterator
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from access_control.models import TrailEntry
from access_control.trail import purge_allowed

from . import lifecycle, storage
from .lifecycle import TrailAction
from .models import Profile, User
from .transitions import close_locked_profile, trace_transition

logger = logging.getLogger(__name__)

State = Profile.State
ClosureReason = Profile.ClosureReason
CHUNK_SIZE = 500  # profiles per transaction in the scheduled openings


def _due_id_chunks(due) -> Iterator[list[int]]:
    """The ids of a scheduled rule's due profiles in pk order, CHUNK_SIZE at a time (keyset walk, no OFFSET)."""
    last_pk = 0
    while True:
        ids = list(due.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:CHUNK_SIZE])
        if not ids:
            return
        last_pk = ids[-1]
        yield ids


def open_due_profiles(now: datetime | None = None) -> int:
    """L3 (scheduled): open every pending profile whose window has passed; returns how many were opened.

    One transaction per chunk locks the rows still due (skipping rows another transaction holds, e.g. an
    opposition being recorded: the next run sees them), opens them with one UPDATE and writes one trail entry
    per profile.
    """
    now = now or timezone.now()
    cutoff = lifecycle.opening_cutoff(now)
    due = Profile.objects.filter(state=State.PENDING, notice_sent_at__lte=cutoff)
    opened = 0
    for ids in _due_id_chunks(due):
        with transaction.atomic(durable=True):
            locked = list(due.filter(pk__in=ids).select_for_update(skip_locked=True).order_by("pk").only("pk"))
            Profile.objects.filter(pk__in=[p.pk for p in locked]).update(state=State.OPEN, opened_at=timezone.now())
            for profile in locked:
                trace_transition(profile, TrailAction.OPENING, None, old=State.PENDING, new=State.OPEN)
        opened += len(locked)
    return opened


def close_expired_suspensions(now: datetime | None = None) -> int:
    """L7 (scheduled): close the suspensions older than CARNET_SUSPENSION_CLOSE_DAYS days; returns the count."""
    now = now or timezone.now()
    cutoff = lifecycle.suspension_cutoff(now)
    due = Profile.objects.filter(state=State.SUSPENDED, suspended_at__lte=cutoff)
    closed = 0
    for ids in _due_id_chunks(due):
        for pk in ids:
            with transaction.atomic(durable=True):
                profile = due.select_for_update(skip_locked=True).filter(pk=pk).first()
                if profile is None:  # lifted or closed meanwhile
                    continue
                close_locked_profile(profile, actor=None, reason=ClosureReason.SUSPENSION, now=timezone.now())
            closed += 1
    return closed


def _delete_bodies(storage_keys: list[str]) -> None:
    for key in storage_keys:
        try:
            storage.delete_body(key)
        except Exception:  # an orphan body is unreadable without its wrapped key; keep purging the others
            logger.warning("Could not delete a purged document body (key %s).", key, exc_info=True)


def _purge_one(pk: int, now: datetime) -> bool:
    with transaction.atomic(durable=True):
        profile = (
            Profile.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, state=State.CLOSED, archive_until__lte=now)
            .first()
        )
        if profile is None:  # re-opened or being changed meanwhile
            return False
        reason = "early_deletion" if profile.deletion_requested_at is not None else "archive_expired"
        storage_keys = list(profile.documents.values_list("storage_key", flat=True))
        # L10: minors this person represented lose their representative, traced in their own trail.
        for minor in Profile.objects.select_for_update().filter(legal_representative=profile).order_by("pk"):
            minor.legal_representative = None
            minor.save(update_fields=["legal_representative"])
            trace_transition(
                minor, TrailAction.LEGAL_REPRESENTATIVE, None, detail="removed", reason="representative_purged"
            )
        user_id = profile.user_id
        with purge_allowed():  # T4: the trail is purged with its profile
            TrailEntry.objects.filter(profile_id=pk).delete()
        profile.delete()  # documents, notices, blocks, masks… cascade
        if user_id is not None:
            User.objects.filter(pk=user_id, kind=User.Kind.PATIENT).delete()
        # Proof that the purge ran, holding no personal data, in the national chain.
        trace_transition(None, TrailAction.PURGE, None, detail=f"profile {pk}", reason=reason)
        transaction.on_commit(lambda: _delete_bodies(storage_keys))
    return True


def purge_due_profiles(now: datetime | None = None) -> int:
    """Delete the closed profiles whose archive period ended or whose early deletion is due (L5, T4; scheduled).

    Their documents (bodies removed after commit), notices and trail go with them. Returns how many were deleted.
    """
    now = now or timezone.now()
    due = Profile.objects.filter(state=State.CLOSED, archive_until__lte=now)
    purged = 0
    for ids in _due_id_chunks(due):
        purged += sum(_purge_one(pk, now) for pk in ids)
    return purged
