"""Bulk enrolment from the health-insurance roster (rule L1), loaded with COPY.

``enrol_roster(fileobj, actor=…)`` streams a roster CSV (header naming ``ROSTER_COLUMNS``), validates each row
on its own (a bad row is a ``RowError`` with its line number, never a stop), skips NIRs already enrolled (a
re-run creates nothing), sets minors listed before their representative aside (at most ``MAX_DEFERRED``), and
loads the good rows in chunks of ``CHUNK_ROWS``, one transaction each, in flat memory. A chunk writes exactly
what ``records.actions.do_enrol_profile`` writes for one person (``tests/test_enrolment.py`` compares the two),
with one PostgreSQL ``COPY`` per table (``executemany`` elsewhere), then hands its notice ids to the broker.

Why COPY, why the provisional code is hashed with ``BULK_CODE_ROUNDS`` rounds, and the measured figures: see
docs/adr/0003-enrolment-copy.md.
"""

import csv
import io
import itertools
import logging
import multiprocessing
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from types import SimpleNamespace
from typing import cast

from celery import shared_task
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, OperationalError, connection, connections, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from access_control.models import AccessMode, TrailEntry
from access_control.trail import GENESIS_HASH, actor_snapshot, entry_hash
from notifications.models import Notice
from notifications.outbox import choose_channel

from . import crypto, lifecycle
from .actions import _check_representation, _is_staff, _require
from .identifiers import validate_nir
from .lifecycle import IllegalTransition, TrailAction
from .models import Profile

logger = logging.getLogger(__name__)

CHUNK_ROWS = 5000  # rows per transaction
ENQUEUE_BATCH = 1000  # notice ids per broker message
MAX_KEPT_ERRORS = 1000  # errors kept in the report (on_error sees every one)
MAX_DEFERRED = 50_000  # minors kept aside until their representative's row is loaded (bounded memory)
BULK_CODE_ROUNDS = 100  # see the module docstring
ADDRESS_LINE_MAX = 38  # NF Z10-011: 38 characters a line

ADDRESS_FIELDS = ("address_complement", "address_building", "address_street", "address_locality")
ROSTER_COLUMNS = (
    "nir",
    "birth_name",
    "usual_name",
    "first_names",
    "birth_date",
    "sex",
    "birth_place_code",
    *ADDRESS_FIELDS,
    "postal_code",
    "city",
    "country",
    "email",
    "representative_nir",
)
PROFILE_COLUMNS = ROSTER_COLUMNS[:-1]  # all but representative_nir are Profile fields
REQUIRED_COLUMNS = ("nir", "birth_name", "first_names", "birth_date", "sex")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_PLACE_CODE = re.compile(r"[0-9A-Z]{0,5}")
_OLDEST_BIRTH_YEAR = 1890


UNKNOWN_REPRESENTATIVE = _("Représentant légal inconnu : il doit être inscrit (dans ce fichier ou avant).")


class RosterFormatError(ValueError):
    """The file cannot be read as a roster at all (no header, missing columns): nothing was loaded."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A rejected row: its line in the file and why (no personal data, so it can be logged and shown)."""

    line: int
    reason: str

    def __str__(self) -> str:
        return _t("Ligne %(line)d : %(reason)s") % {"line": self.line, "reason": self.reason}


@dataclass
class EnrolmentReport:
    rows: int = 0  # data rows read (blank lines aside)
    created: int = 0
    already_enrolled: int = 0  # NIR known already, or repeated in the file
    rejected: int = 0
    notices: int = 0  # pre-opening notices queued (pending or, without any address, undeliverable)
    undeliverable: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first MAX_KEPT_ERRORS

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "created": self.created,
            "already_enrolled": self.already_enrolled,
            "rejected": self.rejected,
            "notices": self.notices,
            "undeliverable": self.undeliverable,
        }


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One validated roster row, in the stored forms (NIR normalised, date parsed)."""

    line: int
    nir: str
    birth_name: str
    usual_name: str
    first_names: str
    birth_date: date
    sex: str
    birth_place_code: str
    address_complement: str
    address_building: str
    address_street: str
    address_locality: str
    postal_code: str
    city: str
    country: str
    email: str
    representative_nir: str

    def profile_fields(self) -> dict:
        """The keyword arguments ``do_enrol_profile`` takes for this person (representative aside)."""
        return {name: getattr(self, name) for name in PROFILE_COLUMNS}


# --- Reading and validating ------------------------------------------------------------------------------


def _max_length(name: str) -> int:
    # Concrete fields; the limit is only compared with the text columns, which all have a max_length.
    return Profile._meta.get_field(name).max_length  # type: ignore[union-attr, return-value]


_LIMITS = {name: _max_length(name) for name in PROFILE_COLUMNS}
_LABELS = {
    "birth_name": _("le nom de naissance"),
    "usual_name": _("le nom d'usage"),
    "first_names": _("les prénoms"),
    "birth_place_code": _("le code du lieu de naissance"),
    "address_complement": _("la ligne d'adresse « complément »"),
    "address_building": _("la ligne d'adresse « bâtiment, résidence »"),
    "address_street": _("la ligne d'adresse « numéro et voie »"),
    "address_locality": _("la ligne d'adresse « lieu-dit, boîte postale »"),
    "postal_code": _("le code postal"),
    "city": _("la commune"),
    "email": _("le courriel"),
}


def _invalid(message, **params) -> ValidationError:
    return ValidationError(message, params=params or None)


def _message(error: ValidationError) -> str:
    return " ".join(str(m) for m in error.messages)


def _text(values: dict, name: str, *, required: bool = False) -> str:
    value = (values.get(name) or "").strip()
    if required and not value:
        raise _invalid(_("%(what)s est obligatoire."), what=str(_LABELS[name]).capitalize())
    limit = ADDRESS_LINE_MAX if name in ADDRESS_FIELDS else _LIMITS[name]
    if len(value) > limit:
        raise _invalid(
            _("%(what)s dépasse %(limit)d caractères (%(length)d)."),
            what=str(_LABELS[name]).capitalize(),
            limit=limit,
            length=len(value),
        )
    return value


def _birth_date(value: str, today: date) -> date:
    value = value.strip()
    if not _DATE.fullmatch(value):
        raise _invalid(_("La date de naissance doit être au format AAAA-MM-JJ."))
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise _invalid(_("La date de naissance n'existe pas.")) from None
    if parsed > today:
        raise _invalid(_("La date de naissance est dans le futur."))
    if parsed.year < _OLDEST_BIRTH_YEAR:
        raise _invalid(_("La date de naissance est antérieure à %(year)d."), year=_OLDEST_BIRTH_YEAR)
    return parsed


def clean_row(line: int, values: dict, *, today: date) -> RosterRow:
    """Validate one row (a column name -> raw text mapping); raises ``ValidationError`` with the reason."""
    if any("\ufffd" in (value or "") for value in values.values()):
        raise _invalid(_("Caractères illisibles : le fichier doit être encodé en UTF-8."))
    nir = validate_nir(values.get("nir") or "")  # I1
    sex = (values.get("sex") or "").strip().upper()
    if sex not in Profile.Sex.values:
        raise _invalid(_("Le sexe doit valoir M ou F."))
    birth_place_code = _text(values, "birth_place_code").upper()
    if not _PLACE_CODE.fullmatch(birth_place_code):
        raise _invalid(_("Le code du lieu de naissance (INSEE) compte au plus 5 chiffres ou lettres."))
    country = (values.get("country") or "").strip().upper() or "FR"
    if not _COUNTRY.fullmatch(country):
        raise _invalid(_("Le pays doit être un code ISO 3166 de deux lettres (FR)."))
    email = _text(values, "email")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise _invalid(_("Le courriel n'est pas une adresse valide.")) from None
    representative_nir = (values.get("representative_nir") or "").strip()
    if representative_nir:
        try:
            representative_nir = validate_nir(representative_nir)
        except ValidationError as exc:
            raise _invalid(_("NIR du représentant légal : %(reason)s"), reason=_message(exc)) from None
        if representative_nir == nir:
            raise _invalid(_("Une personne ne peut pas être son propre représentant légal."))
    return RosterRow(
        line=line,
        nir=nir,
        birth_name=_text(values, "birth_name", required=True),
        usual_name=_text(values, "usual_name"),
        first_names=_text(values, "first_names", required=True),
        birth_date=_birth_date(values.get("birth_date") or "", today),
        sex=sex,
        birth_place_code=birth_place_code,
        address_complement=_text(values, "address_complement"),
        address_building=_text(values, "address_building"),
        address_street=_text(values, "address_street"),
        address_locality=_text(values, "address_locality"),
        postal_code=_text(values, "postal_code"),
        city=_text(values, "city"),
        country=country,
        email=email,
        representative_nir=representative_nir,
    )


def _header(line: str) -> tuple[str, list[str]]:
    delimiter = ";" if line.count(";") > line.count(",") else ","
    names = [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter))]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise RosterFormatError(
            _t("Colonnes obligatoires absentes de la première ligne : %(columns)s.") % {"columns": ", ".join(missing)}
        )
    return delimiter, names


def read_roster(fileobj, *, today: date | None = None) -> Iterator[RosterRow | RowError]:
    """Stream a binary roster file as validated rows and per-line errors (blank lines are skipped).

    The header is read at once: a file that is not a roster raises ``RosterFormatError`` here.
    """
    today = today or timezone.localdate()
    # utf-8-sig drops a BOM; newline="" hands "\r\n" to csv, which treats it as one line end; a byte that is
    # not UTF-8 becomes U+FFFD and fails that row only.
    text = io.TextIOWrapper(fileobj, encoding="utf-8-sig", errors="replace", newline="")
    first = text.readline()
    while first and not first.strip():
        first = text.readline()
    if not first:
        raise RosterFormatError(_t("Le fichier est vide."))
    delimiter, names = _header(first)
    reader = csv.reader(itertools.chain([first], text), delimiter=delimiter, strict=True)
    next(reader)  # the header
    return _rows(reader, names, today)


def _rows(reader, names: list[str], today: date) -> Iterator[RosterRow | RowError]:
    width = len(names)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            # strict=True: an unclosed quote (typically a truncated last line) or a stray one.
            yield RowError(reader.line_num, _t("Ligne mal formée (guillemets) ou tronquée."))
            continue
        if not any(value.strip() for value in fields):
            continue
        if len(fields) != width:
            yield RowError(
                reader.line_num,
                _t("%(found)d colonnes au lieu de %(expected)d (ligne tronquée ?).")
                % {"found": len(fields), "expected": width},
            )
            continue
        try:
            yield clean_row(reader.line_num, dict(zip(names, fields, strict=True)), today=today)
        except ValidationError as exc:
            yield RowError(reader.line_num, _message(exc))


# --- Building the rows of a chunk ------------------------------------------------------------------------


class BulkProvisionalCodeHasher(lifecycle.ProvisionalCodeHasher):
    """The provisional-code hasher at bulk cost (module docstring); same algorithm name and format."""

    iterations = BULK_CODE_ROUNDS

    def salt(self) -> str:
        return secrets.token_urlsafe(16)  # 128 bits; Django's default salt costs ~45 µs to draw


_BULK_HASHER = BulkProvisionalCodeHasher()


def hash_code_for_bulk(code: str) -> str:
    return _BULK_HASHER.encode(lifecycle.normalize_provisional_code(code), _BULK_HASHER.salt())


def _columns(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _defaults(model) -> dict:
    return {f.attname: f.get_default() for f in model._meta.concrete_fields}


_NOTICE_LINK = Notice.trail_entries.through
_TABLES = (Profile, TrailEntry, Notice, _NOTICE_LINK)


@dataclass
class _ChunkRows:
    profiles: list = field(default_factory=list)
    entries: list = field(default_factory=list)
    notices: list = field(default_factory=list)
    links: list = field(default_factory=list)
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


class _Builder:
    """Turns validated rows with their ids into the rows ``do_enrol_profile`` would have written."""

    def __init__(self, actor, now: datetime):
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

    def _entry(self, **values) -> tuple[list, str]:
        # entry_hash reads the hashed fields by name: the row's values stand in for a TrailEntry.
        values["hash"] = digest = entry_hash(SimpleNamespace(**{**self.entry.fixed, **values}))  # type: ignore[arg-type]
        return self.entry.row(values), digest

    def add(self, rows: _ChunkRows, row: RosterRow, *, ids: tuple, entry_ids: Iterator[int]) -> None:
        """Append one person's rows; ``ids``: profile, representative (or None), notice and link ids."""
        profile_id, representative_id, notice_id, link_id = ids
        code = lifecycle.generate_provisional_code()
        values = row.profile_fields()
        values.update(
            id=profile_id, provisional_code_hash=hash_code_for_bulk(code), legal_representative_id=representative_id
        )
        rows.profiles.append(self.profile.row(values))
        # T1: "enrol", detail "->pending" as records.actions._trail writes it; then the representative (L10).
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
            for model in _TABLES:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
                self.sequences[model] = cursor.fetchone()[0]
        # Binary COPY spares the server the parsing of dates and timestamps (~10 % faster here); it needs
        # each column's type: "varchar(15)" -> "varchar", "timestamp with time zone" as is.
        # (db_type() is None only for fields without a column, which are not concrete.)
        self.types = {
            model: [re.sub(r"\(.*\)$", "", cast(str, f.db_type(connection))) for f in model._meta.concrete_fields]
            for model in _TABLES
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

    def __init__(self):
        self.statements, self.adapters = {}, {}
        quote = connection.ops.quote_name
        for model in _TABLES:
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


def _writer():
    return _PostgresWriter() if connection.vendor == "postgresql" else _ExecuteManyWriter()


@dataclass
class _ChunkResult:
    rows: _ChunkRows
    already_enrolled: int
    errors: list[RowError]
    deferred: list[RosterRow]  # minors whose representative is not enrolled yet


def _representatives(fresh: dict[str, RosterRow], new_ids: dict[str, int], now: datetime) -> dict[str, Profile]:
    """Lock and return the profiles named as representatives (L10), in pk order as ``do_enrol_profile`` locks one.

    A representative enrolled in the same chunk counts as the pending profile it is about to be.
    """
    wanted = {row.representative_nir for row in fresh.values() if row.representative_nir}
    # A row that names a representative itself is a minor, or an adult refused for it: never a representative.
    in_chunk = {nir for nir in wanted & fresh.keys() if not fresh[nir].representative_nir}
    found = {
        profile.nir: profile
        for profile in Profile.objects.select_for_update(no_key=True)  # keeps FK inserts of other chunks going
        .filter(nir__in=wanted - fresh.keys())
        .order_by("pk")
        .only("pk", "nir", "birth_date", "state", "deceased_at")
    }
    for nir in in_chunk:
        found[nir] = Profile(
            pk=new_ids[nir], nir=nir, birth_date=fresh[nir].birth_date, state=Profile.State.PENDING, notice_sent_at=now
        )
    return found


def _write_chunk(rows: list[RosterRow], *, actor, writer, defer: bool = False) -> _ChunkResult:
    """One chunk in the caller's transaction: skip known NIRs, check representatives, write everything.

    With ``defer``, a minor whose representative is not enrolled yet is handed back instead of refused: the
    representative may be in a chunk another process is loading.
    """
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
    representatives = _representatives(fresh, profile_ids, now)
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
                _check_representation(row.birth_date, representative, None)
            except IllegalTransition as exc:
                errors.append(RowError(row.line, _message(exc)))
                continue
            representative_id = representative.pk
        accepted.append((row, representative_id))
    with_representative = sum(1 for _row, rep in accepted if rep is not None)
    entry_ids = iter(writer.allocate(TrailEntry, len(accepted) + with_representative))
    notice_ids = writer.allocate(Notice, len(accepted))
    link_ids = writer.allocate(_NOTICE_LINK, len(accepted))
    builder = _Builder(actor, now)
    built = _ChunkRows()
    for (row, representative_id), notice_id, link_id in zip(accepted, notice_ids, link_ids, strict=True):
        ids = (profile_ids[row.nir], representative_id, notice_id, link_id)
        builder.add(built, row, ids=ids, entry_ids=entry_ids)
    # Unused profile ids (rejected minors) are simply skipped, as a rolled-back insert skips its id.
    writer.write(Profile, built.profiles)
    writer.write(TrailEntry, built.entries)
    writer.write(Notice, built.notices)
    writer.write(_NOTICE_LINK, built.links)
    return _ChunkResult(rows=built, already_enrolled=already, errors=errors, deferred=deferred)


_RACE_ATTEMPTS = 3


@dataclass
class _ChunkSummary:
    """What a loaded chunk reports back (small: it crosses processes when loading in parallel)."""

    created: int
    already_enrolled: int
    undeliverable: int
    errors: list[RowError]
    deferred: list[RosterRow]


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) in ("40P01", "40001")  # deadlock, serialization failure


def _load_chunk(rows: list[RosterRow], *, actor, writer, defer: bool = False) -> _ChunkSummary:
    for attempt in range(_RACE_ATTEMPTS):
        try:
            with transaction.atomic():
                result = _write_chunk(rows, actor=actor, writer=writer, defer=defer)
                ids = result.rows.pending_notice_ids
                transaction.on_commit(partial(enqueue_notices, ids))
            built = result.rows
            return _ChunkSummary(
                built.created, result.already_enrolled, built.undeliverable, result.errors, result.deferred
            )
        except (IntegrityError, OperationalError) as exc:
            # A NIR enrolled meanwhile by someone else (do_enrol_profile, a parallel chunk): the chunk rolled
            # back whole; the next attempt sees that NIR as known and skips it. Same for a deadlock between
            # parallel chunks (a representative locked by one, referenced by the other).
            if attempt == _RACE_ATTEMPTS - 1 or (isinstance(exc, OperationalError) and not _is_deadlock(exc)):
                raise
            logger.info("Enrolment chunk hit a concurrent enrolment; retrying.")
    raise AssertionError("unreachable")


class _SerialLoader:
    """Chunks loaded one after the other in this process (the admin page, SQLite, ``workers=1``)."""

    def __init__(self, actor):
        self.actor, self.writer = actor, _writer()

    def submit(self, rows: list[RosterRow], *, defer: bool = True) -> list[_ChunkSummary]:
        return [_load_chunk(rows, actor=self.actor, writer=self.writer, defer=defer)]

    def finish(self) -> list[_ChunkSummary]:
        return []


_worker_state: dict = {}


def _load_chunk_in_worker(rows: list[RosterRow], actor_id: int | None) -> _ChunkSummary:
    if "writer" not in _worker_state:
        from .models import User

        _worker_state["actor"] = User.objects.get(pk=actor_id) if actor_id is not None else None
        _worker_state["writer"] = _writer()
    return _load_chunk(rows, actor=_worker_state["actor"], writer=_worker_state["writer"], defer=True)


class _ParallelLoader:
    """Chunks loaded by ``workers`` forked processes, each with its own connection and transactions.

    At most ``2 x workers`` chunks are in flight (memory stays bounded); results come back in file order.
    Rows of different chunks may now be loaded concurrently: a NIR repeated across two of them is caught by
    the unique index and its chunk retried (``_load_chunk``); a minor whose representative is not enrolled
    yet (it may sit in a chunk another process is loading) comes back deferred, and ``enrol_roster`` loads
    the deferred rows once every chunk is in (they are few: families that straddle two chunks).
    """

    def __init__(self, actor, workers: int):
        connections.close_all()  # the children must not share this process's connection
        context = multiprocessing.get_context("fork")
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        self.actor_id = actor.pk if actor is not None else None
        self.window = 2 * workers
        self.pending: deque = deque()

    def submit(self, rows: list[RosterRow]) -> list[_ChunkSummary]:
        self.pending.append(self.pool.submit(_load_chunk_in_worker, rows, self.actor_id))
        done = []
        while len(self.pending) >= self.window or (self.pending and self.pending[0].done()):
            done.append(self.pending.popleft().result())
        return done

    def finish(self) -> list[_ChunkSummary]:
        try:
            return [future.result() for future in self.pending]
        finally:
            self.pool.shutdown(cancel_futures=True)


def enrol_roster(
    fileobj,
    *,
    actor=None,
    chunk_rows: int = CHUNK_ROWS,
    workers: int = 1,
    on_error: Callable[[RowError], None] | None = None,
    on_progress: Callable[[EnrolmentReport], None] | None = None,
) -> EnrolmentReport:
    """L1: enrol every valid row of a roster file (binary stream); returns the report. See the module doc.

    ``actor`` is the staff member running the import (``None``: the system, e.g. the nightly roster job).
    ``workers`` > 1 loads chunks in that many processes (PostgreSQL, outside any transaction; otherwise
    serially). Raises ``RosterFormatError`` when the file has no usable header; row problems never raise.
    """
    _require(actor is None or _is_staff(actor))
    report = EnrolmentReport()

    def reject(error: RowError) -> None:
        report.rejected += 1
        if len(report.errors) < MAX_KEPT_ERRORS:
            report.errors.append(error)
        if on_error is not None:
            on_error(error)

    deferred: list[RosterRow] = []

    def merge(summaries: list[_ChunkSummary]) -> None:
        for summary in summaries:
            for row in summary.deferred:
                if len(deferred) < MAX_DEFERRED:
                    deferred.append(row)
                else:
                    reject(RowError(row.line, str(UNKNOWN_REPRESENTATIVE)))
            report.created += summary.created
            report.already_enrolled += summary.already_enrolled
            report.notices += summary.created
            report.undeliverable += summary.undeliverable
            for error in sorted(summary.errors, key=lambda e: e.line):
                reject(error)

    rows = read_roster(fileobj)  # reads the header now: a bad file fails before any process starts
    # Forking copies only the calling thread: a process running other threads (a web server, a test session
    # with a live server) could hand its children locks held forever. The command is single-threaded.
    parallel = (
        workers > 1
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and threading.active_count() == 1
    )
    loader = _ParallelLoader(actor, workers) if parallel else _SerialLoader(actor)
    try:
        for batch in _batches(rows, chunk_rows):
            good = []
            for item in batch:
                report.rows += 1
                if isinstance(item, RowError):
                    reject(item)
                else:
                    good.append(item)
            if good:
                merge(loader.submit(good))
            if on_progress is not None:
                on_progress(report)
    finally:
        merge(loader.finish())
    if deferred:  # minors named before their representative: every other row is in by now
        serial = _SerialLoader(actor)
        for batch in _batches(deferred, chunk_rows):
            merge(serial.submit(batch, defer=False))
    if on_progress is not None:
        on_progress(report)
    return report


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


# --- Handing the notices to the broker -------------------------------------------------------------------


@shared_task(name="records.enqueue_enrolment_notices", acks_late=True, ignore_result=True)
def enqueue_enrolment_notices(notice_ids: list[int]) -> int:
    """Worker side: hand each pre-opening notice of a batch to the delivery task (N5; ids only)."""
    from notifications.outbox import enqueue_delivery

    for notice_id in notice_ids:
        enqueue_delivery(notice_id)
    return len(notice_ids)


def enqueue_notices(notice_ids: list[int]) -> None:
    """Send the chunk's notice ids to the broker after its commit, one message per ENQUEUE_BATCH ids.

    A broker failure is logged, not raised: the notices stay pending and the sweep re-queues them (N5).
    """
    for start in range(0, len(notice_ids), ENQUEUE_BATCH):
        batch = notice_ids[start : start + ENQUEUE_BATCH]
        try:
            enqueue_enrolment_notices.apply_async(args=[batch], retry=False)
        except Exception:  # broker down or misconfigured
            logger.warning("Could not enqueue %s pre-opening notices; the sweep will re-queue them.", len(batch))
