"""How a chunk of roster rows reaches the database (rule L1): the rows ``do_enrol_profile`` would write, in bulk.

What a chunk writes is exactly what ``records.actions.do_enrol_profile`` writes for one person, built from the
same pieces (``tests/test_enrolment.py`` compares the two row by row):

- the profile, ``pending``, notice sent now, provisional code hashed, valid ``CARNET_PROVISIONAL_CODE_DAYS``;
- its trail (T1): the ``enrol`` entry, first of the chain (seq 1 after ``GENESIS_HASH``, hashed by
  ``access_control.trail.entry_hash``), then ``legal_representative``/``set`` for a minor (L10);
- the ``pre_opening`` notice (N5, N7) on the channel ``notifications.outbox.choose_channel`` picks, with
  ``queue_notice``'s dedupe key, the provisional code sealed with the master key, linked to the enrol entry.

Only the way rows reach the database differs: ids are drawn from the tables' sequences up front, so every row
(and every hash that covers an id) is built in Python and the chunk goes in with one PostgreSQL ``COPY`` per
table; other databases (SQLite in development) get ``executemany`` of the same rows.

The provisional code hash: ``do_enrol_profile`` hashes with PBKDF2 at 20,000 rounds (8 ms a code, 125 codes
a second per core: 65 million would take 6 core-days). The bulk path uses the same hasher, algorithm and format
(``pbkdf2_sha256_code$<rounds>$<salt>$<hash>``, which ``records.lifecycle.provisional_code_matches`` checks
whatever the round count it names) at ``BULK_CODE_ROUNDS`` rounds with a 128-bit random salt. That is sound for
this secret: the code is random (10 symbols of 31, ~49.5 bits, not a human choice that a dictionary could
find), it is single-use (erased at activation), it expires after 6 weeks, and online guesses go through the
throttled activation and opposition forms. An offline attacker would first need a copy of the profile table,
then ~2**48.5 x BULK_CODE_ROUNDS HMAC-SHA256 per code (weeks of a GPU for one person's code, within its life),
while every row of that table is already the personal data such a copy exposes.
"""

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import cast

from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from access_control.models import AccessMode, TrailEntry
from access_control.trail import GENESIS_HASH, HASHED_FIELDS, actor_snapshot, entry_hash
from notifications.models import Notice
from notifications.outbox import choose_channel

from . import crypto, lifecycle
from .actors import Actor
from .citus import is_citus
from .lifecycle import IllegalTransition, TrailAction
from .models import NirIndex, Profile
from .roster import RosterRow, RowError, reason_text
from .transitions import check_representation

BULK_CODE_ROUNDS = 100  # see the module docstring

UNKNOWN_REPRESENTATIVE = _("Représentant légal inconnu : il doit être inscrit (dans ce fichier ou avant).")


# --- Building the rows of a chunk ------------------------------------------------------------------------


class BulkProvisionalCodeHasher(lifecycle.ProvisionalCodeHasher):
    """The provisional-code hasher at bulk cost (module docstring); same algorithm name and format."""

    iterations = BULK_CODE_ROUNDS

    def salt(self) -> str:
        return secrets.token_urlsafe(16)  # 128 bits; Django's default salt costs ~45 µs to draw

    def encode(self, password: str, salt: str, iterations: int | None = None) -> str:
        """Django's PBKDF2 encoding, straight to hashlib (its checks and conversions cost as much as 100 rounds)."""
        rounds = iterations or self.iterations
        digest = hashlib.pbkdf2_hmac(self.digest().name, password.encode(), salt.encode(), rounds)
        return f"{self.algorithm}${rounds}${salt}${base64.b64encode(digest).decode('ascii')}"


_BULK_HASHER = BulkProvisionalCodeHasher()
_ALPHABET = lifecycle.PROVISIONAL_CODE_ALPHABET
_CODES = len(_ALPHABET) ** lifecycle.PROVISIONAL_CODE_LENGTH


def hash_code_for_bulk(code: str) -> str:
    return _BULK_HASHER.encode(lifecycle.normalize_provisional_code(code), _BULK_HASHER.salt())


def draw_provisional_code() -> str:
    """A provisional code drawn as ``lifecycle.generate_provisional_code`` draws it, ~6 times faster.

    Uniform over the alphabet, each symbol independent: one draw of the system's generator below 31**10 instead
    of one per symbol.
    """
    value = secrets.randbelow(_CODES)
    symbols = []
    for _position in range(lifecycle.PROVISIONAL_CODE_LENGTH):
        value, symbol = divmod(value, len(_ALPHABET))
        symbols.append(_ALPHABET[symbol])
    return "".join(symbols)


def _columns(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _defaults(model) -> dict:
    return {f.attname: f.get_default() for f in model._meta.concrete_fields}


_NOTICE_LINK = Notice.trail_entries.through
_TABLES = (Profile, TrailEntry, Notice, _NOTICE_LINK)
# Written with the profiles but keyed by the NIR (no id of its own): I1's index, routed by NIR on Citus.
_WRITTEN = (*_TABLES, NirIndex)


@dataclass
class ChunkRows:
    """A chunk's rows, table by table, in column order, and what ``enrol_roster`` reports of them."""

    profiles: list = field(default_factory=list)
    entries: list = field(default_factory=list)
    notices: list = field(default_factory=list)
    links: list = field(default_factory=list)
    nir_index: list = field(default_factory=list)
    pending_notice_ids: list[int] = field(default_factory=list)
    created: int = 0
    undeliverable: int = 0


class _Template:
    """A table's row as a list in column order: the defaults once, then each row's own values set by index."""

    def __init__(self, model, fixed: dict):
        self.names = _columns(model)
        self.index = {name: position for position, name in enumerate(self.names)}
        values = {**_defaults(model), **fixed}
        self.fixed = {name: values[name] for name in self.names}
        self.base = [values[name] for name in self.names]

    def row(self, values: dict) -> list:
        row = self.base.copy()
        index = self.index
        for name, value in values.items():
            row[index[name]] = value
        return row


_JSON_VALUE = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps builds an encoder per call with options


class _ChunkEntryHash:
    """``entry_hash`` of a chunk's entries, which differ only in a few fields: the canonical JSON is cut once.

    ``entry_hash`` serialises every hashed field with sorted keys; here the fields shared by the chunk's entries
    (actor, time, mode, outcome…) are serialised once around markers, and each entry only fills in its own
    values (~10 times faster). The result is checked against ``entry_hash`` itself when the chunk starts, so a
    change of the trail's format can only make enrolment fail, never write a hash the chain does not verify.
    """

    VARYING = ("profile_id", "seq", "prev_hash", "action", "detail")

    def __init__(self, fixed: dict):
        marks = {name: f"\x00{name}\x00" for name in self.VARYING}  # no field of an entry holds a NUL
        shared = {name: fixed[name] for name in HASHED_FIELDS if name not in marks}
        shared["at"] = fixed["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        template = json.dumps({**shared, **marks}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        parts = re.split(r'"\\u0000([a-z_]+)\\u0000"', template)
        self.pieces, self.order = parts[0::2], parts[1::2]
        probe = {"profile_id": 1, "seq": 2, "prev_hash": GENESIS_HASH, "action": "enrol", "detail": "->pending"}
        expected = entry_hash(SimpleNamespace(**{**fixed, **probe}))  # type: ignore[arg-type]
        if sorted(self.order) != sorted(self.VARYING) or self(probe) != expected:
            raise RuntimeError("The trail's hash format changed: update records.enrolment_copy._ChunkEntryHash.")

    def __call__(self, values: dict) -> str:
        pieces = self.pieces
        parts = [pieces[0]]
        for position, name in enumerate(self.order, start=1):
            parts.append(_JSON_VALUE(values[name]))
            parts.append(pieces[position])
        return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()


class _Builder:
    """Turns validated rows with their ids into the rows ``do_enrol_profile`` would have written."""

    def __init__(self, actor: Actor | None, now: datetime):
        self.profile = _Template(
            Profile,
            {
                "state": Profile.State.PENDING.value,
                "notice_sent_at": now,
                "provisional_code_expires_at": lifecycle.provisional_code_expiry(now),
                "preferred_language": "fr",
                "created_at": now,
            },
        )
        self.entry = _Template(
            TrailEntry,
            {
                **actor_snapshot(actor),
                "at": now,
                "mode": AccessMode.NORMAL.value,
                "outcome": TrailEntry.Outcome.ALLOWED.value,
                "client_address": None,
            },
        )
        self.notice = _Template(
            Notice,
            {
                "kind": Notice.Kind.PRE_OPENING.value,
                "created_at": now,
                "updated_at": now,
                "deliver_after": now,
                "enqueued_at": now,
            },
        )

        self.entry_hash = _ChunkEntryHash(self.entry.fixed)

    def _entry(self, **values) -> tuple[list, str]:
        values["hash"] = digest = self.entry_hash(values)
        return self.entry.row(values), digest

    def add(self, rows: ChunkRows, row: RosterRow, *, ids: tuple, entry_ids: Iterator[int]) -> None:
        """Append one person's rows; ``ids``: profile, representative (or None), notice and link ids."""
        profile_id, representative_id, notice_id, link_id = ids
        code = draw_provisional_code()
        values = row.profile_fields()
        values.update(
            id=profile_id, provisional_code_hash=hash_code_for_bulk(code), legal_representative_id=representative_id
        )
        rows.profiles.append(self.profile.row(values))
        rows.nir_index.append([values["nir"], profile_id])  # records.nir_index.index_nir, in bulk
        # T1: "enrol", detail "->pending" as records.transitions.trace_transition writes it; then the representative (L10).
        enrol_id = next(entry_ids)
        entry, digest = self._entry(
            id=enrol_id,
            profile_id=profile_id,
            seq=1,
            prev_hash=GENESIS_HASH,
            action=TrailAction.ENROL.value,
            detail="->pending",
        )
        rows.entries.append(entry)
        if representative_id is not None:
            entry, _digest = self._entry(
                id=next(entry_ids),
                profile_id=profile_id,
                seq=2,
                prev_hash=digest,
                action=TrailAction.LEGAL_REPRESENTATIVE.value,
                detail="set",
            )
            rows.entries.append(entry)
        # N2, N5: queue_notice's channel choice, status and dedupe key for a notice tied to a trail entry.
        channel = choose_channel(SimpleNamespace(**{**self.profile.fixed, **values}), Notice.Kind.PRE_OPENING)
        status = Notice.Status.UNDELIVERABLE if channel == Notice.Channel.NONE else Notice.Status.PENDING
        rows.notices.append(
            self.notice.row(
                {
                    "id": notice_id,
                    "profile_id": profile_id,
                    "channel": str(channel),
                    "status": str(status),
                    "dedupe_key": f"{Notice.Kind.PRE_OPENING}:{profile_id}:patient:{enrol_id}",
                    "sealed_payload": crypto.seal(code.encode("ascii")),
                }
            )
        )
        rows.links.append([link_id, notice_id, enrol_id])
        rows.created += 1
        if status == Notice.Status.PENDING:
            rows.pending_notice_ids.append(notice_id)
        else:
            rows.undeliverable += 1


# --- Writing a chunk -------------------------------------------------------------------------------------


class _PostgresWriter:
    """Ids from the tables' sequences; rows in with one COPY per table."""

    def __init__(self):
        self.sequences = {}
        with connection.cursor() as cursor:
            self.sharded = is_citus(cursor)
            for model in _TABLES:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
                self.sequences[model] = cursor.fetchone()[0]
        # Binary COPY spares the server the parsing of dates and timestamps (~10 % faster here); it needs
        # each column's type: "varchar(15)" -> "varchar", "timestamp with time zone" as is.
        # (db_type() is None only for fields without a column, which are not concrete.)
        self.types = {
            model: [re.sub(r"\(.*\)$", "", cast(str, f.db_type(connection))) for f in model._meta.concrete_fields]
            for model in _WRITTEN
        }

    def allocate(self, model, count: int) -> list[int]:
        if count == 0:
            return []
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [self.sequences[model], count])
            return [row[0] for row in cursor.fetchall()]

    def write(self, model, rows: list) -> None:
        if not rows:
            return
        columns = ", ".join(connection.ops.quote_name(f.column) for f in model._meta.concrete_fields)
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(model._meta.db_table)
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(self.types[model])
                for row in rows:
                    copy.write_row(row)


class _ExecuteManyWriter:
    """Other databases (SQLite in development and tests): ids above the highest used, ``executemany``.

    SQLite serialises write transactions (``transaction_mode=IMMEDIATE`` in settings), so the highest id
    cannot move under the chunk's transaction. Values are adapted by their field for the types the driver
    does not take as they are (dates, timestamps, binary, addresses), like an ORM insert.
    """

    _ADAPTED = (models.DateField, models.BinaryField, models.GenericIPAddressField)  # DateTimeField is a DateField
    sharded = False

    def __init__(self):
        self.statements, self.adapters = {}, {}
        quote = connection.ops.quote_name
        for model in _WRITTEN:
            fields = model._meta.concrete_fields
            columns = ", ".join(quote(f.column) for f in fields)
            marks = ", ".join(["%s"] * len(fields))
            table = quote(model._meta.db_table)
            self.statements[model] = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
            self.adapters[model] = [(n, f) for n, f in enumerate(fields) if isinstance(f, self._ADAPTED)]

    def allocate(self, model, count: int) -> list[int]:
        if count == 0:
            return []
        table = model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            highest = cursor.fetchone()[0]
            if connection.vendor == "sqlite":
                cursor.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = %s", [table])
                highest = max(highest, cursor.fetchone()[0])
        return list(range(highest + 1, highest + 1 + count))

    def write(self, model, rows: list) -> None:
        if not rows:
            return
        adapters = self.adapters[model]
        adapted: dict = {}  # a chunk repeats its timestamps in every row: adapt each value once
        for row in rows:
            for position, model_field in adapters:
                value = row[position]
                if value is not None:
                    key = (position, value)
                    if key not in adapted:
                        adapted[key] = model_field.get_db_prep_save(value, connection)
                    row[position] = adapted[key]
        with connection.cursor() as cursor:
            cursor.executemany(self.statements[model], rows)


def chunk_writer():
    """The writer for this connection's database: COPY on PostgreSQL, ``executemany`` elsewhere."""
    return _PostgresWriter() if connection.vendor == "postgresql" else _ExecuteManyWriter()


@dataclass
class ChunkResult:
    """What ``write_chunk`` wrote, skipped, refused and handed back."""

    rows: ChunkRows
    already_enrolled: int
    errors: list[RowError]
    deferred: list[RosterRow]  # minors whose representative is not enrolled yet


_REPRESENTATIVE_FIELDS = ("pk", "nir", "birth_date", "state", "deceased_at")


def _lock_representatives(nirs: set[str], *, sharded: bool) -> dict[str, Profile]:
    """The enrolled profiles with these NIRs, locked in pk order as ``do_enrol_profile`` locks one.

    FOR NO KEY UPDATE keeps the foreign-key checks of other chunks' inserts going. On Citus a lock must name
    its shard: the NIRs are looked up first (every shard answers from its NIR index), then each profile is
    locked by its id, the distribution column (one shard per statement), in the same pk order.
    """
    if not nirs:
        return {}
    profiles = Profile.objects.filter(nir__in=nirs).order_by("pk").only(*_REPRESENTATIVE_FIELDS)
    if not sharded:
        return {profile.nir: profile for profile in profiles.select_for_update(no_key=True)}
    found = {}
    for pk in profiles.values_list("pk", flat=True):
        profile = Profile.objects.select_for_update(no_key=True).only(*_REPRESENTATIVE_FIELDS).filter(pk=pk).first()
        if profile is not None:  # purged in between: as if never enrolled
            found[profile.nir] = profile
    return found


def _representatives(
    fresh: dict[str, RosterRow], new_ids: dict[str, int], now: datetime, *, sharded: bool = False
) -> dict[str, Profile]:
    """The profiles named as representatives (L10), locked (``_lock_representatives``).

    A representative enrolled in the same chunk counts as the pending profile it is about to be.
    """
    wanted = {row.representative_nir for row in fresh.values() if row.representative_nir}
    # A row that names a representative itself is a minor, or an adult refused for it: never a representative.
    in_chunk = {nir for nir in wanted & fresh.keys() if not fresh[nir].representative_nir}
    found = _lock_representatives(wanted - fresh.keys(), sharded=sharded)
    for nir in in_chunk:
        found[nir] = Profile(
            pk=new_ids[nir], nir=nir, birth_date=fresh[nir].birth_date, state=Profile.State.PENDING, notice_sent_at=now
        )
    return found


def _one_connection_per_node(writer) -> None:
    """On Citus, this transaction reaches each worker over one connection ("sequential" mode).

    After a parallel multi-shard read or write, Citus refuses any write to a coordinator or reference table in
    the same transaction, and a caller's transaction may go on to write one (an account, a staff action). The
    COPYs still stream to every worker at once; only the shards of one worker share its connection.
    """
    if writer.sharded:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")


def write_chunk(rows: list[RosterRow], *, actor: Actor | None, writer, defer: bool = False) -> ChunkResult:
    """One chunk in the caller's transaction: skip known NIRs, check representatives, write everything.

    With ``defer``, a minor whose representative is not enrolled yet is handed back instead of refused: the
    representative may be in a chunk another process is loading.
    """
    _one_connection_per_node(writer)
    known = set(Profile.objects.filter(nir__in=[row.nir for row in rows]).values_list("nir", flat=True))
    fresh: dict[str, RosterRow] = {}
    already = 0
    for row in rows:
        if row.nir in known or row.nir in fresh:
            already += 1
        else:
            fresh[row.nir] = row
    now = timezone.now()
    profile_ids = dict(zip(fresh, writer.allocate(Profile, len(fresh)), strict=True))
    representatives = _representatives(fresh, profile_ids, now, sharded=writer.sharded)
    errors: list[RowError] = []
    deferred: list[RosterRow] = []
    accepted: list[tuple[RosterRow, int | None]] = []
    for row in fresh.values():
        representative_id = None
        if row.representative_nir:
            representative = representatives.get(row.representative_nir)
            if representative is None and row.representative_nir in fresh:
                errors.append(
                    RowError(row.line, _t("Le représentant légal est mineur ou sa propre ligne est refusée."))
                )
                continue
            if representative is None and defer:
                deferred.append(row)
                continue
            if representative is None:
                errors.append(RowError(row.line, str(UNKNOWN_REPRESENTATIVE)))
                continue
            try:
                check_representation(row.birth_date, representative, None)
            except IllegalTransition as exc:
                errors.append(RowError(row.line, reason_text(exc)))
                continue
            representative_id = representative.pk
        accepted.append((row, representative_id))
    # Unused profile ids (rejected minors) are simply skipped, as a rolled-back insert skips its id.
    built = build_rows(accepted, profile_ids, actor=actor, writer=writer, now=now)
    write_rows(built, writer)
    return ChunkResult(rows=built, already_enrolled=already, errors=errors, deferred=deferred)


def build_rows(
    accepted: list[tuple[RosterRow, int | None]],
    profile_ids: dict[str, int],
    *,
    actor: Actor | None,
    writer,
    now: datetime,
) -> ChunkRows:
    """The rows of people already checked ((row, representative's id or None), profile id by NIR), in memory.

    Draws the trail entry, notice and link ids from ``writer``; writes nothing (``write_rows`` does).
    """
    with_representative = sum(1 for _row, rep in accepted if rep is not None)
    entry_ids = iter(writer.allocate(TrailEntry, len(accepted) + with_representative))
    notice_ids = writer.allocate(Notice, len(accepted))
    link_ids = writer.allocate(_NOTICE_LINK, len(accepted))
    builder = _Builder(actor, now)
    built = ChunkRows()
    for (row, representative_id), notice_id, link_id in zip(accepted, notice_ids, link_ids, strict=True):
        ids = (profile_ids[row.nir], representative_id, notice_id, link_id)
        builder.add(built, row, ids=ids, entry_ids=entry_ids)
    return built


def write_rows(built: ChunkRows, writer) -> None:
    """Write built rows, table by table (profiles first: the others point at them), in the caller's transaction."""
    _one_connection_per_node(writer)
    writer.write(Profile, built.profiles)
    writer.write(NirIndex, built.nir_index)
    writer.write(TrailEntry, built.entries)
    writer.write(Notice, built.notices)
    writer.write(_NOTICE_LINK, built.links)
