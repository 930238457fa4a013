"""Writing the trail (T1) as a hash chain per profile (T2).

Every action calls ``record_entry`` inside its own transaction, so the entry commits or rolls back with the
action. Entries of one profile form a chain: each stores the previous entry's hash and its own hash over a
canonical serialisation. Writers of the same chain are serialised by a transaction-scoped advisory lock on
PostgreSQL (SQLite serialises every write transaction), so concurrent consultations cannot fork the chain.
Entries without a profile (failed identity look-ups, A11) form one chain of their own.

The database refuses UPDATE and DELETE on the trail (migration ``0003_trail_append_only``); the retention
purge (T4) deletes a closed profile's chain inside ``purge_allowed()``. ``verify_chain`` / ``iter_problems``
recompute every chain (the ``verify_trail`` command) and report where it breaks.
"""

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from .models import AccessMode, TrailEntry

GENESIS_HASH = "0" * 64
_ADDRESS_FIELD = TrailEntry._meta.get_field("client_address")
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


def chain_lock_call(profile_id: int | None) -> tuple[str, list]:
    """The SQL call (and its parameters) that takes the chain's transaction-scoped advisory lock (PostgreSQL).

    A caller may run it inside one of its own statements, then pass ``chain_locked=True`` to ``record_entry``
    in the same transaction (``access_control.api.open_record`` does, saving a round trip).
    """
    # The two-int4 form keeps our keys apart from one-bigint locks; ids past 2**31 share a key with a smaller
    # one, which only serialises two chains needlessly.
    return "pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, (profile_id or 0) % 2**31]


def _lock_chain_tail(profile_id: int | None, *, locked: bool = False) -> tuple[int, str] | None:
    """Serialise the chain's writers, then read its last (seq, hash). Raw SQL: this runs on every traced read."""
    table = TrailEntry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not locked:
            # The tail is read by the next statement, whose snapshot (READ COMMITTED) is taken after the lock is
            # held: it sees the previous writer's row.
            call, params = chain_lock_call(profile_id)
            cursor.execute(f"SELECT {call}", params)
        if profile_id is None:
            cursor.execute(f"SELECT seq, hash FROM {table} WHERE profile_id IS NULL ORDER BY seq DESC LIMIT 1")  # noqa: S608
        else:
            cursor.execute(
                f"SELECT seq, hash FROM {table} WHERE profile_id = %s ORDER BY seq DESC LIMIT 1",  # noqa: S608
                [profile_id],
            )
        return cursor.fetchone()


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
    chain_locked: bool = False,
) -> TrailEntry:
    """Append one entry to the profile's chain. Must run inside the action's transaction.

    ``chain_locked``: the caller already ran ``chain_lock_call(profile.pk)`` in this transaction, in an earlier
    statement (so this one's snapshot sees the previous writer's entry).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_entry must be called inside the action's transaction (rule T1).")
    profile_id = profile.pk if profile is not None else None
    last = _lock_chain_tail(profile_id, locked=chain_locked)
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
        # Hash the address as the database will give it back (IPv6 is stored in its compressed form).
        client_address=_ADDRESS_FIELD.get_prep_value(client_address) or None,
        prev_hash=prev_hash,
        **actor_snapshot(actor),
    )
    entry.hash = entry_hash(entry)
    entry.save(force_insert=True)
    return entry


@contextmanager
def purge_allowed(using: str = DEFAULT_DB_ALIAS):
    """Let DELETE (and TRUNCATE) through the append-only triggers for the rest of this block (T4).

    Only the retention purge uses it, inside the atomic block that deletes the profile. The permission never
    outlives the block, and never the transaction: PostgreSQL gets ``SET LOCAL``, SQLite a marker row that is
    inserted and removed within the same transaction (so no other connection ever sees it committed).
    """
    conn = connections[using]
    if not conn.in_atomic_block:
        raise RuntimeError("purge_allowed must be used inside the purge's transaction (rule T4).")
    if conn.vendor == "postgresql":
        on, off = (
            "SELECT set_config('carnet.trail_purge', 'on', true)",
            ("SELECT set_config('carnet.trail_purge', 'off', true)"),
        )
    elif conn.vendor == "sqlite":
        on, off = "INSERT INTO carnet_trail_purge (token) VALUES (1)", "DELETE FROM carnet_trail_purge"
    else:
        raise NotImplementedError(f"No trail purge for the {conn.vendor} database.")
    with conn.cursor() as cursor:
        cursor.execute(on)
    yield
    # Reached only without an exception: on one, the enclosing atomic block rolls the permission back.
    with conn.cursor() as cursor:
        cursor.execute(off)


@dataclass(frozen=True)
class Problem:
    """A broken link in a chain. Identifies the entry by profile id and seq only (no patient data)."""

    profile_id: int | None
    seq: int
    kind: str  # "seq", "link" or "hash"
    detail: str

    def __str__(self) -> str:
        chain = f"profile {self.profile_id}" if self.profile_id is not None else "profile-less chain"
        return f"{chain}: seq {self.seq}: {self.detail}"


_VERIFY_FIELDS = ("id", *HASHED_FIELDS, "hash")


class _ChainCheck:
    """Checks one chain entry by entry, in seq order: seq continuity, prev_hash links, each entry's hash."""

    def __init__(self) -> None:
        self.expected_seq, self.expected_prev = 1, GENESIS_HASH

    def check(self, entry) -> list[Problem]:
        problems = []
        if entry.seq != self.expected_seq:
            what = "missing entries" if entry.seq > self.expected_seq else "repeated position"
            problems.append(Problem(entry.profile_id, entry.seq, "seq", f"expected seq {self.expected_seq} ({what})"))
        if entry.prev_hash != self.expected_prev:
            problems.append(
                Problem(entry.profile_id, entry.seq, "link", "prev_hash does not match the previous entry's hash")
            )
        if entry_hash(entry) != entry.hash:
            problems.append(
                Problem(entry.profile_id, entry.seq, "hash", "content does not match its hash (entry altered)")
            )
        # Link to the stored hash: one altered entry is reported once, not as a cascade down the chain.
        self.expected_seq, self.expected_prev = entry.seq + 1, entry.hash
        return problems


def verify_chain(profile_id: int | None) -> list[Problem]:
    """Every problem in one profile's chain (``None``: the profile-less chain); empty when intact (T2)."""
    entries = (
        TrailEntry.objects.filter(profile_id=profile_id)
        .order_by("seq", "id")
        .values_list(*_VERIFY_FIELDS, named=True)
        .iterator(chunk_size=2000)
    )
    check = _ChainCheck()
    return [problem for entry in entries for problem in check.check(entry)]


@dataclass
class VerifyReport:
    chains: int = 0
    entries: int = 0
    broken_chains: int = 0


def iter_problems(report: VerifyReport, *, chunk_size: int = 5000) -> Iterator[Problem]:
    """Walk every chain in one streamed pass (server-side cursor on PostgreSQL), yielding the first problem
    of each broken chain. Memory stays flat whatever the table size. ``report`` is filled in as it goes.

    Run it inside a transaction: the cursor then streams from one snapshot (outside one, PostgreSQL would
    materialise the whole result for a WITH HOLD cursor before the first row)."""
    # Ordered like the (profile, seq) unique index, so PostgreSQL walks it instead of sorting the table.
    # Named tuples rather than model instances: ~2x faster, and entry_hash reads attributes either way.
    entries = (
        TrailEntry.objects.order_by("profile_id", "seq")
        .values_list(*_VERIFY_FIELDS, named=True)
        .iterator(chunk_size=chunk_size)
    )
    current: object = object()  # sentinel distinct from every profile id and from None
    check, broken = _ChainCheck(), False
    for entry in entries:
        report.entries += 1
        if entry.profile_id != current:
            current, check, broken = entry.profile_id, _ChainCheck(), False
            report.chains += 1
        problems = check.check(entry)
        if problems and not broken:
            broken = True
            report.broken_chains += 1
            yield problems[0]
