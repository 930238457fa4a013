"""The statements access control writes by hand for its hot paths, each beside its ORM reference (ADR 0005).

Every consultation runs them: ``api.open_record`` and ``api.open_document`` read the actor, the profile, the
facts of the decision and the trail chain's tail in one statement (``practitioner_and_profile``);
``api.visible_documents`` filters with the visibility condition compiled once per mode (``visibility``); the
trail (T1, T2) locks its chains and reads their tails (``lock_chain_tail``) and inserts its entries
(``insert_entry``) without ``Model.save``. Together they took the consultation from 10 statements and ~17 ms
to 5 statements and ~3.3 ms (bench/README.md).

The fence: nothing else in the app writes SQL. Beside each hand-written statement stands a plain-ORM function
that returns the same result (the ``*_orm`` functions, ``visibility_conditions``, ``profiles_with_facts``);
tests/test_fast_sql.py runs both on the same random worlds on PostgreSQL and compares them. A change to a rule
changes the reference first; the test then says which statement is behind.
"""

from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import BooleanField, Exists, Model, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import Combinable, RawSQL

from plumbing.sql import RowValues, converted_rows
from practitioners.models import Practitioner, Profession
from records.models import Document, Profile

from .models import (
    AccessMode,
    AccessRule,
    Block,
    CategoryMask,
    OccupationalAuthorisation,
    TrailEntry,
    TreatingRightsGrant,
)
from .rules import EMERGENCY_MODES, OPEN_STATES

ChainTail = tuple[int, str] | None  # a trail chain's last (seq, hash); None for an empty chain

# --- The trail's chain tail (T2) ---------------------------------------------------------------------------------


def chain_tail_call(profile_id: int) -> tuple[str, list[Any]]:
    """An SQL expression (and its parameters) that locks the chain and gives its tail (PostgreSQL only).

    ``carnet_trail_chain_tail`` (migration 0006) takes the chain's transaction-scoped advisory lock, then reads
    the tail with a snapshot taken after the lock, so it may sit in the select list of any statement
    (``practitioner_and_profile`` puts it in the facts query, saving a round trip).
    """
    return "carnet_trail_chain_tail(%s::bigint)", [profile_id]


def parse_tail(value: str | None) -> ChainTail:
    """Decode what ``carnet_trail_chain_tail`` returns (``"<seq> <hash>"`` or NULL)."""
    if value is None:
        return None
    seq, last_hash = value.split(" ", 1)
    return int(seq), last_hash


def lock_chain_tail(profile_id: int) -> ChainTail:
    """Serialise the chain's writers, then read its last (seq, hash): one call on every traced action.

    SQLite serialises write transactions (a second writer fails to write rather than fork the chain): there the
    reference's read is enough.
    """
    if connection.vendor != "postgresql":
        return chain_tail_orm(profile_id)
    call, params = chain_tail_call(profile_id)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {call}", params)
        return parse_tail(cursor.fetchone()[0])


def chain_tail_orm(profile_id: int) -> ChainTail:
    """Reference of ``lock_chain_tail``'s read: the chain's last (seq, hash), without the lock."""
    entries = TrailEntry.objects.filter(profile_id=profile_id)
    return entries.order_by("-seq").values_list("seq", "hash").first()


# --- The trail's INSERT (T1) -------------------------------------------------------------------------------------

_insert_sql: dict[str, tuple[str, list[str], RowValues]] = {}


def insert_entry_statement(entry: TrailEntry) -> tuple[str, list[Any]]:
    """``INSERT … RETURNING id`` for a new entry, and its parameters: written once per vendor.

    ``Model.save`` spends ~0.5 ms of Python compiling the same INSERT on every traced read (bench/README.md).
    No signal is sent: nothing listens to the trail's saves.
    """
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of the ``connection`` proxy looks the connection up again
    vendor = db.vendor
    if vendor not in _insert_sql:
        quote = db.ops.quote_name
        fields = [f for f in TrailEntry._meta.concrete_fields if not f.primary_key]
        sql = (
            f"INSERT INTO {quote(TrailEntry._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(TrailEntry._meta.pk.column)}"
        )
        _insert_sql[vendor] = (sql, [f.attname for f in fields], RowValues(fields))
    sql, attnames, prepare = _insert_sql[vendor]
    return sql, prepare([getattr(entry, name) for name in attnames], db)


def mark_saved(entry: TrailEntry, pk: int) -> TrailEntry:
    """Give an entry inserted by ``insert_entry_statement`` its id, as ``Model.save`` would."""
    entry.pk = pk
    entry._state.adding, entry._state.db = False, connection.alias
    return entry


def insert_entry(entry: TrailEntry) -> TrailEntry:
    """Insert an unsaved entry with ``insert_entry_statement``."""
    sql, params = insert_entry_statement(entry)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return mark_saved(entry, cursor.fetchone()[0])


def insert_entry_orm(entry: TrailEntry) -> TrailEntry:
    """Reference of ``insert_entry``."""
    entry.save(force_insert=True)
    return entry


# --- The facts of the record-level decision (A1-A7) ---------------------------------------------------------------


def profiles_with_facts(profiles: QuerySet[Profile], practitioner: Practitioner) -> QuerySet[Profile]:
    """Annotate profiles with the per-practitioner facts of the record-level decision (one query).

    The reference of ``practitioner_and_profile``'s facts, and what ``api.find_profile`` runs (not a hot path).
    """
    return profiles.select_related("treating_doctor").annotate(
        _blocked=Exists(Block.objects.filter(profile_id=OuterRef("pk"), practitioner_id=practitioner.pk)),  # A5
        _occupational_authorised=Exists(
            OccupationalAuthorisation.objects.filter(profile_id=OuterRef("pk"), practitioner_id=practitioner.pk)
        ),  # A3
        _profession_authorised=Exists(
            AccessRule.objects.filter(profession_id=practitioner.profession_id, may_read=True)
        ),  # A2
    )


_record_facts_sql: dict[str, tuple[str, list[Any]]] = {}
_FACTS_FROM = " /* facts */ FROM "  # where the outer SELECT list ends (subqueries have their own FROM)


def _record_facts_statement(using: str) -> tuple[str, list[Any]]:
    """One statement for the actor (with profession), the profile and the facts of the decision, once per vendor.

    Written from the models' metadata; the two ORM queries it replaces cost ~3 ms of Python between them.
    """
    connection = connections[using]
    vendor = connection.vendor
    if vendor not in _record_facts_sql:
        quote = connection.ops.quote_name
        models = ((Practitioner, "pr"), (Profession, "pn"), (Profile, "pf"))
        columns, cols = [], []
        for model, alias in models:
            for field in model._meta.concrete_fields:
                columns.append(f"{alias}.{quote(field.column)}")
                cols.append(field.get_col(alias))
        table = {model: quote(model._meta.db_table) for model, _ in models}
        block, occupational, rule = (quote(m._meta.db_table) for m in (Block, OccupationalAuthorisation, AccessRule))
        sql = (
            f"SELECT {', '.join(columns)}, "  # noqa: S608 -- names from the models' metadata, values bound
            # Correlated on the bound profile id, not on pf.id of the outer join: Citus then routes the whole
            # statement to the profile's shard (docs/scaling.md).
            f"EXISTS(SELECT 1 FROM {block} b WHERE b.profile_id = %s AND b.practitioner_id = pr.id), "  # A5
            f"EXISTS(SELECT 1 FROM {occupational} o WHERE o.profile_id = %s AND o.practitioner_id = pr.id), "  # A3
            f"EXISTS(SELECT 1 FROM {rule} r WHERE r.profession_id = pr.profession_id AND r.may_read) "  # A2
            f"{_FACTS_FROM}{table[Practitioner]} pr JOIN {table[Profession]} pn ON pn.id = pr.profession_id "
            f"LEFT JOIN {table[Profile]} pf ON pf.id = %s WHERE pr.id = %s"
        )
        _record_facts_sql[vendor] = (sql, cols)
    return _record_facts_sql[vendor]


@cache
def _attnames(model: type[Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


@cache
def _row_ends() -> tuple[int, int, int]:
    """Where the practitioner's, the profession's and the profile's columns end in the facts' row."""
    practitioner, profession, profile = (len(m._meta.concrete_fields) for m in (Practitioner, Profession, Profile))
    return practitioner, practitioner + profession, practitioner + profession + profile


@cache
def _with_chain_tail(sql: str) -> str:
    """The facts statement with the chain's tail as the last column of its outer SELECT list."""
    call, _params = chain_tail_call(0)
    return sql.replace(_FACTS_FROM, f", {call}{_FACTS_FROM}", 1)


def practitioner_and_profile(
    practitioner_id: int, profile_id: int | None, *, lock_chain: bool = False
) -> tuple[Practitioner, Profile | None, ChainTail]:
    """The actor as the database has it now (A1) and the profile annotated like ``profiles_with_facts``, one query.

    ``None`` for a profile that no longer exists, and without a profile id (the actor is then read alone). The
    profile's treating doctor is loaded on first use.
    ``lock_chain`` (PostgreSQL only, with a profile id): the same statement locks the profile's trail chain and
    reads its tail (T2), returned third for ``trail.new_entry``; otherwise the third value is ``None``. Without a
    profile the entry joins the national chain, which ``trail.new_entry`` locks itself (on Citus its lock lives
    on the coordinator, never in a statement routed to a shard).
    """
    using = Profile.objects.db
    if profile_id is None:  # no profile: the actor alone (on Citus, a join to no profile would ask every shard)
        practitioner = Practitioner.objects.using(using).select_related("profession").get(pk=practitioner_id)
        return practitioner, None, None
    sql, cols = _record_facts_statement(using)
    head, params = [profile_id, profile_id], [profile_id, practitioner_id]
    lock_chain = lock_chain and profile_id is not None
    if lock_chain and profile_id is not None:  # the tail is the last column of the outer SELECT list
        sql = _with_chain_tail(sql)
        head = [*head, *chain_tail_call(profile_id)[1]]
    params = [*head, *params]
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        raise Practitioner.DoesNotExist("Practitioner matching query does not exist.")
    (row,) = converted_rows(using, "access_control.record_facts", cols, rows)
    ends = _row_ends()
    instances = [row[start:end] for start, end in zip((0, *ends[:-1]), ends, strict=True)]
    blocked, occupational_authorised, profession_authorised, *rest = row[ends[-1] :]
    tail = parse_tail(rest[0]) if lock_chain else None
    practitioner = Practitioner.from_db(using, _attnames(Practitioner), instances[0])
    profession = Profession.from_db(using, _attnames(Profession), instances[1])
    Practitioner._meta.get_field("profession").set_cached_value(practitioner, profession)
    if instances[2][0] is None:
        return practitioner, None, tail
    profile = Profile.from_db(using, _attnames(Profile), instances[2])
    # What profiles_with_facts() annotates, read by api._facts(): attributes the model does not declare.
    profile._blocked = bool(blocked)  # type: ignore[attr-defined]
    profile._occupational_authorised = bool(occupational_authorised)  # type: ignore[attr-defined]
    profile._profession_authorised = bool(profession_authorised)  # type: ignore[attr-defined]
    return practitioner, profile, tail


def practitioner_and_profile_orm(
    practitioner_id: int, profile_id: int | None, *, lock_chain: bool = False
) -> tuple[Practitioner, Profile | None, ChainTail]:
    """Reference of ``practitioner_and_profile`` (the chain's tail read without its lock)."""
    practitioner = Practitioner.objects.select_related("profession").get(pk=practitioner_id)
    profiles = Profile.objects.filter(pk=profile_id) if profile_id is not None else Profile.objects.none()
    profile = profiles_with_facts(profiles, practitioner).first()
    return practitioner, profile, chain_tail_orm(profile_id) if lock_chain and profile_id is not None else None


# --- What a practitioner sees of a record (A2, A4, A10, A12) -----------------------------------------------------


def openable_profiles(practitioner_id: int, mode: str, profile_id: int | None = None) -> QuerySet[Profile]:
    """Profiles this practitioner may open in this mode: ``rules.record_denial`` written in SQL.

    The request checks (attestation, justification) are not here: they belong to ``api.open_record``.
    ``profile_id``: only that profile, named in every subquery on its rows too (one shard on Citus).
    """
    own = {} if profile_id is None else {"profile_id": profile_id}
    practitioner_ok = Practitioner.objects.filter(
        pk=practitioner_id,
        status=Practitioner.Status.ACTIVE,
        is_insurer_physician=False,  # A1, A3
    )
    if mode == AccessMode.CENTRE_15:
        practitioner_ok = practitioner_ok.filter(is_samu_regulator=True)  # A7
    profession_ok = AccessRule.objects.filter(profession__practitioners=practitioner_id, may_read=True)  # A2
    occupational = Practitioner.objects.filter(pk=practitioner_id, is_occupational_physician=True)
    profiles = Profile.objects.filter(
        Exists(practitioner_ok),
        Exists(profession_ok),
        # A3: an occupational physician only with the patient's express authorisation.
        ~Exists(occupational)
        | Exists(
            OccupationalAuthorisation.objects.filter(profile_id=OuterRef("pk"), practitioner_id=practitioner_id).filter(
                **own
            )
        ),
        state__in=OPEN_STATES,  # L
    ).exclude(
        Exists(Block.objects.filter(profile_id=OuterRef("pk"), practitioner_id=practitioner_id).filter(**own))
    )  # A5
    if profile_id is not None:
        profiles = profiles.filter(pk=profile_id)
    if mode in EMERGENCY_MODES:
        profiles = profiles.filter(emergency_access_opt_out=False)  # A7
    return profiles


def visibility_conditions(practitioner_id: int, profile_id: int, mode: str) -> list[Q | Combinable]:
    """The documents of the profile that the practitioner may see, as ORM conditions: the reference of ``visibility``.

    Correlated on the document's columns only (no join in the outer query), so the compiled SQL can be reused
    inside any ``Document`` queryset. Whether the practitioner is the treating doctor or holds the rights the
    patient granted like a treating doctor's (A4) does not depend on the document: PostgreSQL evaluates it once
    per query.
    """
    treating = Profile.objects.filter(pk=profile_id, treating_doctor_id=practitioner_id)
    granted = TreatingRightsGrant.objects.filter(profile_id=profile_id, practitioner_id=practitioner_id)
    privileged = Q(author_practitioner_id=practitioner_id) | Exists(treating) | Exists(granted)  # A4, A6
    profession = Practitioner.objects.filter(pk=practitioner_id).values("profession_id")
    # The correlated subqueries name the profile's id as well: Citus then prunes each of them to the profile's shard.
    return [
        Q(profile_id=profile_id, deleted_at__isnull=True),  # A10
        Exists(openable_profiles(practitioner_id, mode, profile_id).filter(pk=OuterRef("profile_id"))),
        Exists(
            AccessRule.objects.filter(
                profession_id=Subquery(profession),  # one look-up of the profession, not a join per document type
                document_type_id=OuterRef("document_type_id"),
                may_read=True,
            )
        ),  # A2: default-deny
        # A4 and A12 in one condition, so that ``privileged`` is evaluated once: neither masked (A4) nor of a
        # masked category (A12, present and future documents), unless privileged.
        privileged
        | (
            Q(masked_at__isnull=True)
            & ~Exists(
                CategoryMask.objects.filter(
                    profile_id=OuterRef("profile_id"), category__document_types=OuterRef("document_type_id")
                ).filter(profile_id=profile_id)
            )
        ),
    ]


# Ids no real row has: the visibility condition is compiled once per mode and database vendor with them, and the
# real ids are put in their parameter slots on each call (building and compiling the nested EXISTS cost ~4.5 ms of
# Python a call, bench/README.md).
_PRACTITIONER_SLOT = -(2**62) + 7
_PROFILE_SLOT = -(2**62) + 11
_visibility_sql: dict[tuple[str, str], tuple[str, tuple[Any, ...], tuple[int, ...], tuple[int, ...]]] = {}


def visibility(practitioner_id: int, profile_id: int, mode: str, using: str) -> RawSQL:
    """``visibility_conditions`` as one SQL condition on ``Document``, compiled once per mode and vendor."""
    vendor = connections[using].vendor
    compiled = _visibility_sql.get((vendor, mode))
    if compiled is None:
        query = Document.objects.filter(*visibility_conditions(_PRACTITIONER_SLOT, _PROFILE_SLOT, mode)).query
        if any(count for alias, count in query.alias_refcount.items() if alias != query.base_table):
            # the reused SQL may only name the document table itself
            raise AssertionError("The visibility condition must not join the outer query.")
        sql, params = query.get_compiler(using).compile(query.where)
        practitioner_slots, profile_slots = (
            tuple(i for i, value in enumerate(params) if type(value) is int and value == slot)
            for slot in (_PRACTITIONER_SLOT, _PROFILE_SLOT)
        )
        compiled = _visibility_sql[(vendor, mode)] = (sql, tuple(params), practitioner_slots, profile_slots)
    sql, params, practitioner_slots, profile_slots = compiled
    params = list(params)
    for i in practitioner_slots:
        params[i] = practitioner_id
    for i in profile_slots:
        params[i] = profile_id
    return RawSQL(sql, params, output_field=BooleanField())  # noqa: S611 -- SQL compiled by the ORM, values bound
