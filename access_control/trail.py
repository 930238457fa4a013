"""Writing the trail (T1) as a hash chain per profile (T2), and verifying the chains.

Every action calls ``record_entry`` (or ``new_entry`` then ``save_entry``) inside its own transaction, so the
entry commits or rolls back with the action. Writers of one chain are serialised by the database function
``carnet_trail_chain_tail`` (migration 0006); the database refuses UPDATE and DELETE on the trail except inside
``purge_allowed()`` (T4); ``verify_chain`` and ``iter_problems`` back the ``verify_trail`` command.
The statements behind the lock and the INSERT are written by hand in
``access_control.fast_sql`` (docs/adr/0005-fast-sql.md); other apps compose with the trail's SQL through
``entry_insert`` only. See docs/adr/0001-trail-hash-chain.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, cast

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from .fast_sql import ChainTail, insert_entry, insert_entry_statement, lock_chain_tail, mark_saved
from .models import AccessMode, TrailEntry

if TYPE_CHECKING:  # imported where used at run time (records imports the trail)
    from records.actors import Actor
    from records.models import Document, Profile

GENESIS_HASH = "0" * 64
# The key of the national chain: entries that concern no profile (staff, directory and token actions, failed
# look-ups, purge proofs). No profile has id 0. Hashed as null, the key it had before it was stored as 0
# (docs/adr/0008-national-trail-chain.md).
NATIONAL_CHAIN = 0
_ADDRESS_FIELD = TrailEntry._meta.get_field("client_address")
_UNREAD = object()  # record_entry's default: read the chain's tail itself
# The level of assurance (acr) of the practitioner's sign-in behind this request (issue 17): set by the door
# (``assurance``, ``attest_assurance``), copied by ``new_entry`` into the practitioner's entries.
_ASSURANCE: ContextVar[str] = ContextVar("carnet_trail_assurance", default="")

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
# Hashed only when set: entries written before the field existed keep their hashes (T2), a set level of
# assurance cannot be altered unseen, and an app's access cannot be rewritten as the patient's own.
OPTIONAL_HASHED_FIELDS = ("assurance", "client_app")


def entry_hash(entry: TrailEntry) -> str:
    """SHA-256 over a canonical JSON serialisation of the entry's traced fields (``OPTIONAL_HASHED_FIELDS`` when set)."""
    values = {}
    for name in HASHED_FIELDS:
        value = getattr(entry, name)
        if name == "at":
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        elif name == "profile_id" and value == NATIONAL_CHAIN:
            value = None
        values[name] = value
    for name in OPTIONAL_HASHED_FIELDS:
        value = getattr(entry, name, "")
        if value:
            values[name] = value
    canonical = json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@contextmanager
def assurance(level: str = "") -> Iterator[None]:
    """Within this block, a practitioner's entries carry ``level``, the acr of their sign-in (issue 17).

    Each request runs in one such block (``accounts.middleware.AssuranceMiddleware``), so a level set by
    ``attest_assurance`` never outlives the request that set it.
    """
    token = _ASSURANCE.set(level)
    try:
        yield
    finally:
        _ASSURANCE.reset(token)


def attest_assurance(level: str) -> None:
    """Set the level of assurance for the rest of the enclosing ``assurance`` block (the request)."""
    _ASSURANCE.set(level)


@dataclass(frozen=True)
class EntryInsert:
    """An unsaved entry's ``INSERT … RETURNING id``, for a caller that runs it as part of its own statement.

    ``notifications.fast_sql.upsert_notice`` runs ``sql`` as the first common table expression of the notice's
    upsert (one round trip for both rows), then hands the returned id to ``saved``. In the action's transaction,
    like ``save_entry``.
    """

    entry: TrailEntry
    sql: str
    params: list[Any]

    def saved(self, pk: int) -> TrailEntry:
        """The entry, now saved with this id (what the statement returned)."""
        return mark_saved(self.entry, pk)


def entry_insert(entry: TrailEntry) -> EntryInsert:
    """The INSERT of an entry built by ``new_entry``, to run inside another statement (see ``EntryInsert``)."""
    sql, params = insert_entry_statement(entry)
    return EntryInsert(entry, sql, params)


def save_entry(entry: TrailEntry) -> TrailEntry:
    """Save an entry built by ``new_entry`` (in the transaction that built it)."""
    return insert_entry(entry)


def actor_snapshot(actor: Actor | None) -> dict[str, Any]:
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
    profile: Profile | None,
    action: str,
    actor: Actor | None,
    document: Document | None = None,
    mode: str = AccessMode.NORMAL,
    outcome: str = TrailEntry.Outcome.ALLOWED,
    reason: str = "",
    justification: str = "",
    detail: str = "",
    client_address: str | None = None,
    client_app: str = "",
    tail: ChainTail | object = _UNREAD,
) -> TrailEntry:
    """Append one entry to the profile's chain (the arguments of ``new_entry``), in the action's transaction."""
    return save_entry(
        new_entry(
            profile=profile,
            action=action,
            actor=actor,
            document=document,
            mode=mode,
            outcome=outcome,
            reason=reason,
            justification=justification,
            detail=detail,
            client_address=client_address,
            client_app=client_app,
            tail=tail,
        )
    )


def new_entry(
    *,
    profile: Profile | None,
    action: str,
    actor: Actor | None,
    document: Document | None = None,
    mode: str = AccessMode.NORMAL,
    outcome: str = TrailEntry.Outcome.ALLOWED,
    reason: str = "",
    justification: str = "",
    detail: str = "",
    client_address: str | None = None,
    client_app: str = "",
    tail: ChainTail | object = _UNREAD,
) -> TrailEntry:
    """The next entry of the profile's chain, hashed but not saved. Must run inside the action's transaction.

    The caller saves it in the same transaction, with ``save_entry`` or by handing it to ``queue_notice`` (which
    saves it in the notice's own statement, ``entry_insert``); ``record_entry`` does both steps. ``tail``: what
    ``fast_sql.practitioner_and_profile(..., lock_chain=True)`` gave the caller in this transaction (the chain is
    then locked already); by default the chain is locked and its tail read here. ``client_app``: the connected
    app that acted for the patient (issue 17), named in the entry beside the patient.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_entry must be called inside the action's transaction (rule T1).")
    profile_id = profile.pk if profile is not None else NATIONAL_CHAIN
    last = lock_chain_tail(profile_id) if tail is _UNREAD else cast(ChainTail, tail)
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
        client_app=client_app[:120],
        **actor_snapshot(actor),
    )
    if entry.actor_kind == TrailEntry.ActorKind.PRACTITIONER:
        entry.assurance = _ASSURANCE.get()
    entry.hash = entry_hash(entry)
    return entry


@contextmanager
def purge_allowed(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Let DELETE (and TRUNCATE) through the append-only triggers for the rest of this block (T4).

    Only the retention purge uses it, inside the atomic block that deletes the profile. The permission never
    outlives the block, and never the transaction: PostgreSQL gets ``SET LOCAL``, SQLite a marker row that is
    inserted and removed within the same transaction (so no other connection ever sees it committed).
    """
    conn = connections[using]
    if not conn.in_atomic_block:
        raise RuntimeError("purge_allowed must be used inside the purge's transaction (rule T4).")
    if conn.vendor == "postgresql":
        # SET LOCAL, not set_config(): Citus passes SET LOCAL on to the shards, whose triggers check it too.
        on, off = "SET LOCAL carnet.trail_purge TO 'on'", "SET LOCAL carnet.trail_purge TO 'off'"
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

    profile_id: int
    seq: int
    kind: str  # "seq", "link" or "hash"
    detail: str

    def __str__(self) -> str:
        chain = f"profile {self.profile_id}" if self.profile_id != NATIONAL_CHAIN else "national chain"
        return f"{chain}: seq {self.seq}: {self.detail}"


_VERIFY_FIELDS = ("id", *HASHED_FIELDS, *OPTIONAL_HASHED_FIELDS, "hash")


class _ChainCheck:
    """Checks one chain entry by entry, in seq order: seq continuity, prev_hash links, each entry's hash."""

    def __init__(self) -> None:
        self.expected_seq, self.expected_prev = 1, GENESIS_HASH

    def check(self, entry: TrailEntry) -> list[Problem]:
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


def verify_chain(profile_id: int) -> list[Problem]:
    """Every problem in one profile's chain (``NATIONAL_CHAIN``: the national one); empty when intact (T2)."""
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
    """Walk every chain in one streamed pass, yielding the first problem of each broken chain.

    The pass uses a server-side cursor on PostgreSQL, so memory stays flat whatever the table size. ``report`` is
    filled in as it goes.

    Run it inside a transaction: the cursor then streams from one snapshot (outside one, PostgreSQL would
    materialise the whole result for a WITH HOLD cursor before the first row).
    """
    # Ordered like the (profile, seq) unique index, so PostgreSQL walks it instead of sorting the table.
    # Named tuples rather than model instances: ~2x faster, and entry_hash reads attributes either way.
    entries = (
        TrailEntry.objects.order_by("profile_id", "seq")
        .values_list(*_VERIFY_FIELDS, named=True)
        .iterator(chunk_size=chunk_size)
    )
    current: object = object()  # sentinel distinct from every chain key
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
