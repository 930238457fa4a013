"""The scheduled lifecycle rules run by ``records.tasks``: openings (L3), closures (L7) and the purge (L5, T4).

Each reads its due profiles' ids in pk order, ``CHUNK_SIZE`` at a time (keyset walk, no OFFSET, no row lock:
on Citus the walk reads every shard), then takes each profile in a durable transaction of its own: it locks the
profile by its id alone (``FOR UPDATE SKIP LOCKED``, routed to the profile's shard on Citus), checks that it is
still due, and changes it. Rows another transaction holds are skipped: the next run sees them. Two runs at once
never handle the same profile twice: the second finds it locked, or no longer due.

Early deletion (L5): ``do_request_early_deletion`` brings ``archive_until`` forward, so the same indexed query
finds every due purge; the purge job runs hourly, so the deletion happens within the hour after that date.
"""

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import cast

from django.db import connection, models, transaction
from django.utils import timezone

from access_control.trail import purge_allowed

from . import lifecycle, storage
from .lifecycle import TrailAction
from .models import NirIndex, Profile, User
from .transitions import close_locked_profile, trace_transition

logger = logging.getLogger(__name__)

State = Profile.State
ClosureReason = Profile.ClosureReason
CHUNK_SIZE = 500  # due profiles' ids read per query by the scheduled rules


def _due_id_chunks(due) -> Iterator[list[int]]:
    """The ids of a scheduled rule's due profiles in pk order, CHUNK_SIZE at a time (keyset walk, no OFFSET)."""
    last_pk = 0
    while True:
        ids = list(due.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:CHUNK_SIZE])
        if not ids:
            return
        last_pk = ids[-1]
        yield ids


def _lock_due(due, pk: int) -> Profile | None:
    """Lock one profile by its id if it is still due; None if it is no longer due or another transaction holds it."""
    return due.select_for_update(skip_locked=True).filter(pk=pk).first()


def open_due_profiles(now: datetime | None = None) -> int:
    """L3 (scheduled): open every pending profile whose window has passed; returns how many were opened.

    A profile another transaction holds (e.g. an opposition being recorded) is skipped: the next run sees it.
    """
    now = now or timezone.now()
    cutoff = lifecycle.opening_cutoff(now)
    due = Profile.objects.filter(state=State.PENDING, notice_sent_at__lte=cutoff)
    opened = 0
    for ids in _due_id_chunks(due):
        for pk in ids:
            with transaction.atomic(durable=True):
                profile = _lock_due(due.only("pk"), pk)
                if profile is None:
                    continue
                Profile.objects.filter(pk=pk).update(state=State.OPEN, opened_at=timezone.now())
                trace_transition(profile, TrailAction.OPENING, None, old=State.PENDING, new=State.OPEN)
            opened += 1
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
                profile = _lock_due(due, pk)
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


def _relations_into(model: type[models.Model]) -> list[tuple[type[models.Model], models.ForeignObjectRel]]:
    """The models that point at ``model`` (its reverse relations, hidden ones included), with the relation."""
    return [
        (cast(type[models.Model], rel.related_model), rel)
        for rel in model._meta.get_fields(include_hidden=True)
        if isinstance(rel, models.ForeignObjectRel)
    ]


def _delete_rows_of(profile: Profile) -> None:
    """Delete the profile and every row that belongs to it, each statement naming the profile (T4, L5).

    The rows that belong to a profile are those of every table with a ``profile`` column, the trail's included.
    On Citus each statement on such a table is routed to the profile's shard (a cascade by Django's collector
    would delete by row ids, on every shard), and the foreign keys Citus dropped are followed by hand: the rows on
    the coordinator that hang from the profile's rows (letters, notice-to-entry links, connected apps' tokens) go
    first, by the ids of the rows they hang from, read on the profile's shard. The NIR index is sharded by the
    NIR, so its row goes by the NIR. The trail's DELETE needs ``purge_allowed`` (T4).
    """
    pk = profile.pk
    per_profile = [(model, rel.field.column) for model, rel in _relations_into(Profile) if rel.field.name == "profile"]
    models_of_profile = [model for model, _column in per_profile]
    for model in models_of_profile:
        hanging = [(m, rel) for m, rel in _relations_into(model) if m not in [*models_of_profile, Profile]]
        for hanging_model, rel in hanging:
            if rel.on_delete is not models.CASCADE:
                raise RuntimeError(f"The purge does not know how to delete {hanging_model._meta.label}.")
        ids = list(model._base_manager.filter(profile_id=pk).values_list("pk", flat=True)) if hanging else []
        for start in range(0, len(ids), CHUNK_SIZE):
            for hanging_model, rel in hanging:
                hanging_model._base_manager.filter(
                    **{f"{rel.field.name}__in": ids[start : start + CHUNK_SIZE]}
                ).delete()
    NirIndex.objects.filter(nir=profile.nir).delete()
    quote = connection.ops.quote_name
    tables = [(model._meta.db_table, column) for model, column in per_profile if model is not NirIndex]
    with connection.cursor() as cursor:
        for table, column in [*tables, (Profile._meta.db_table, "id")]:
            # Names from the models' metadata, the id bound.
            cursor.execute(f"DELETE FROM {quote(table)} WHERE {quote(column)} = %s", [pk])  # noqa: S608


def _purge_one(pk: int, now: datetime) -> bool:
    with transaction.atomic(durable=True):
        profile = _lock_due(Profile.objects.filter(state=State.CLOSED, archive_until__lte=now), pk)
        if profile is None:  # re-opened or being changed meanwhile
            return False
        reason = "early_deletion" if profile.deletion_requested_at is not None else "archive_expired"
        storage_keys = list(profile.documents.values_list("storage_key", flat=True))
        # L10: minors this person represented lose their representative, traced in their own trail. They may be
        # on other shards: read apart, then each locked by its id.
        minor_ids = Profile.objects.filter(legal_representative_id=pk).order_by("pk").values_list("pk", flat=True)
        for minor_pk in list(minor_ids):
            minor = Profile.objects.select_for_update().filter(pk=minor_pk, legal_representative_id=pk).first()
            if minor is None:  # given another representative meanwhile
                continue
            minor.legal_representative = None
            minor.save(update_fields=["legal_representative"])
            trace_transition(
                minor, TrailAction.LEGAL_REPRESENTATIVE, None, detail="removed", reason="representative_purged"
            )
        user_id = profile.user_id
        with purge_allowed():  # T4: the trail is purged with its profile
            _delete_rows_of(profile)
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
