"""Writing the trail (T1) as a hash chain per profile (T2).

Every action calls ``record_entry`` inside its own transaction, so the entry commits or rolls back with the
action. Entries of one profile form a chain: each stores the previous entry's hash and its own hash over a
canonical serialisation. Writers of the same chain are serialised by a transaction-scoped advisory lock on
PostgreSQL (SQLite serialises every write transaction), so concurrent consultations cannot fork the chain.
Entries without a profile (failed identity look-ups, A11) form one chain of their own.
"""

import hashlib
import json
from datetime import UTC

from django.db import connection, transaction
from django.utils import timezone

from .models import AccessMode, TrailEntry

GENESIS_HASH = "0" * 64
_LOCK_NAMESPACE = 0x7C41  # arbitrary, keeps our advisory locks apart from anyone else's

HASHED_FIELDS = (
    "at",
    "profile_id",
    "seq",
    "actor_kind",
    "actor_user_id",
    "actor_practitioner_id",
    "actor_name",
    "actor_profession",
    "actor_rpps",
    "document_id",
    "action",
    "detail",
    "mode",
    "outcome",
    "reason",
    "justification",
    "client_address",
    "prev_hash",
)


def entry_hash(entry: TrailEntry) -> str:
    """SHA-256 over a canonical JSON serialisation of the entry's traced fields."""
    values = {}
    for name in HASHED_FIELDS:
        value = getattr(entry, name)
        if name == "at":
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        values[name] = value
    canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _lock_chain(profile_id: int | None) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, profile_id or 0])


def actor_snapshot(actor) -> dict:
    """The actor's fields as they are now (names and profession are snapshots, T1)."""
    from practitioners.models import Practitioner
    from records.models import User

    if actor is None:
        return {"actor_kind": TrailEntry.ActorKind.SYSTEM, "actor_name": "Carnet"}
    if isinstance(actor, User):
        practitioner = getattr(actor, "practitioner", None) if actor.kind == User.Kind.PRACTITIONER else None
        if practitioner is None:
            kind = TrailEntry.ActorKind.STAFF if actor.kind == User.Kind.STAFF else TrailEntry.ActorKind.PATIENT
            name = actor.get_full_name() or actor.get_username()
            if kind == TrailEntry.ActorKind.PATIENT:
                profile = getattr(actor, "profile", None)
                name = profile.display_name if profile is not None else name
            return {"actor_kind": kind, "actor_user_id": actor.pk, "actor_name": name}
        actor = practitioner
    if isinstance(actor, Practitioner):
        return {
            "actor_kind": TrailEntry.ActorKind.PRACTITIONER,
            "actor_user_id": actor.user_id,
            "actor_practitioner_id": actor.pk,
            "actor_name": actor.display_name,
            "actor_profession": actor.profession.label_fr,
            "actor_rpps": actor.rpps,
        }
    raise TypeError(f"Unknown actor type {type(actor).__name__}")


def record_entry(
    *,
    profile,
    action: str,
    actor,
    document=None,
    mode: str = AccessMode.NORMAL,
    outcome: str = TrailEntry.Outcome.ALLOWED,
    reason: str = "",
    justification: str = "",
    detail: str = "",
    client_address: str | None = None,
) -> TrailEntry:
    """Append one entry to the profile's chain. Must run inside the action's transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_entry must be called inside the action's transaction (rule T1).")
    profile_id = profile.pk if profile is not None else None
    _lock_chain(profile_id)
    last = (
        TrailEntry.objects.filter(profile_id=profile_id)
        .order_by("-seq")
        .values_list("seq", "hash")
        .first()
    )
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    entry = TrailEntry(
        at=timezone.now(),
        profile_id=profile_id,
        seq=seq,
        document_id=document.pk if document is not None else None,
        action=action,
        detail=detail,
        mode=mode,
        outcome=outcome,
        reason=reason,
        justification=justification,
        client_address=client_address,
        prev_hash=prev_hash,
        **actor_snapshot(actor),
    )
    entry.hash = entry_hash(entry)
    entry.save(force_insert=True)
    return entry
