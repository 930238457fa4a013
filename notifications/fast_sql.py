"""The statement the outbox writes by hand for its hot path, beside its ORM reference (ADR 0005).

Every consultation queues a notice (N1): ``upsert_notice`` gets or creates it, locked, links it to the trail
entry and, given an unsaved entry, inserts that entry too, in one PostgreSQL statement where the ORM takes a
select, a savepoint, an insert, its release, the entry's insert and the link (the consultation went from 7
statements to 5 with it and the facts query, bench/README.md). The trail's part comes from
``access_control.trail.entry_insert``: the outbox composes with the trail's one public INSERT, it does not
know the trail's SQL. On Citus, which runs each data-modifying CTE as a step of its own through the coordinator,
the same work is three plain statements, two of them routed to the profile's shard (``_citus_upsert_statement``).

The fence: nothing else in the app writes SQL. ``upsert_notice_orm`` is the reference (and what runs on
SQLite); tests/test_fast_sql.py runs both on the same rows on PostgreSQL and compares notices, flags and links.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connections
from django.db.models import Field
from django.utils import timezone

from access_control.models import TrailEntry
from access_control.trail import entry_insert, save_entry
from plumbing.sql import RowValues, converted_rows
from records.nir_index import on_citus

from .models import Notice

# A notice that will never reach the patient: a folded consultation starts a follow-up instead of joining it (N1).
DEAD_STATUSES = frozenset({Notice.Status.FAILED, Notice.Status.UNDELIVERABLE})

_upsert_sql: dict[tuple[str, bool | None], tuple[str, list[Field[Any, Any]], list[Any]]] = {}
_link_sql: dict[str, str] = {}


def _upsert_statement(using: str, trail_insert: str | None) -> tuple[str, list[Field[Any, Any]], list[Any]]:
    """The upsert of ``upsert_notice``, written once per database alias and variant.

    ``trail_insert``: the statement begins with this INSERT of the trail entry (``t``) and links the notice to it.
    """
    saves_entry = trail_insert is not None
    if (using, saves_entry) not in _upsert_sql:
        quote = connections[using].ops.quote_name
        fields = [f for f in Notice._meta.concrete_fields if not f.primary_key]
        through = Notice.trail_entries.through._meta
        link_columns = (quote(through.get_field("notice").column), quote(through.get_field("trailentry").column))
        status = quote(Notice._meta.get_field("status").column)
        if saves_entry:  # the entry is the new row ``t``
            head, entry, entry_from, entry_exists, tail = f"WITH t AS ({trail_insert}), ", "t.id", ", t", "", "t.id"
        else:  # the entry's id is a parameter, maybe NULL
            head, entry, entry_from, entry_exists, tail = "WITH ", "%s", "", "%s::bigint IS NOT NULL AND ", "NULL"
        sql = (
            f"{head}n AS ({_notice_upsert(using)}), "  # noqa: S608 -- names from the models' metadata, values bound
            f"link AS (INSERT INTO {quote(through.db_table)} ({', '.join(link_columns)}) "
            f"SELECT n.id, {entry} FROM n{entry_from} WHERE {entry_exists}"
            f"(n.carnet_created OR NOT %s OR n.{status} NOT IN ({', '.join(['%s'] * len(DEAD_STATUSES))})) "
            f"ON CONFLICT DO NOTHING) "
            f"SELECT {', '.join(f'n.{quote(f.column)}' for f in Notice._meta.concrete_fields)}, carnet_created, "
            f"{tail} FROM n{entry_from}"
        )
        _upsert_sql[(using, saves_entry)] = (
            sql,
            fields,
            [f.get_col(Notice._meta.db_table) for f in Notice._meta.concrete_fields],
        )
    return _upsert_sql[(using, saves_entry)]


def _notice_upsert(using: str) -> str:
    """``INSERT … ON CONFLICT DO UPDATE … RETURNING`` the notice's columns and ``carnet_created``, alone."""
    quote = connections[using].ops.quote_name
    fields = [f for f in Notice._meta.concrete_fields if not f.primary_key]
    key = quote(Notice._meta.get_field("dedupe_key").column)
    # Named, not inferred from (dedupe_key): on Citus the constraint also holds the distribution column
    # (records.citus), and only its name is the same on both. PostgreSQL names a column's UNIQUE
    # <table>_<column>_key.
    unique = quote(f"{Notice._meta.db_table}_{Notice._meta.get_field('dedupe_key').column}_key")
    returned = ", ".join(quote(f.column) for f in Notice._meta.concrete_fields)
    return (
        f"INSERT INTO {quote(Notice._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ON CONSTRAINT {unique} DO UPDATE SET {key} = EXCLUDED.{key} "
        f"RETURNING {returned}, (xmax = 0) AS carnet_created"
    )


def _citus_upsert_statement(using: str) -> tuple[str, list[Field[Any, Any]], list[Any]]:
    """Citus: the notice's upsert alone, ``NULL`` for the entry's id (the shape of ``_upsert_statement``'s rows).

    Citus runs every data-modifying CTE as a step of its own, with its result sent back through the coordinator:
    the statement above would take three steps (the entry, the notice, the link on the coordinator). Alone, the
    upsert names the profile's shard only and is routed there as one task; the entry is inserted before it and
    the link after it (``_link_statement``), each a statement of its own.
    """
    if (using, None) not in _upsert_sql:
        fields = [f for f in Notice._meta.concrete_fields if not f.primary_key]
        _upsert_sql[(using, None)] = (
            f"{_notice_upsert(using)}, NULL",
            fields,
            [f.get_col(Notice._meta.db_table) for f in Notice._meta.concrete_fields],
        )
    return _upsert_sql[(using, None)]


def _link_statement(using: str) -> str:
    """Citus: the notice's link to a trail entry, a statement of its own (the link table is on the coordinator)."""
    if using not in _link_sql:
        quote = connections[using].ops.quote_name
        through = Notice.trail_entries.through._meta
        columns = (quote(through.get_field("notice").column), quote(through.get_field("trailentry").column))
        _link_sql[using] = (
            f"INSERT INTO {quote(through.db_table)} ({', '.join(columns)}) VALUES (%s, %s) ON CONFLICT DO NOTHING"  # noqa: S608
        )
    return _link_sql[using]


@cache
def _notice_row() -> tuple[list[tuple[Field[Any, Any], str, bool, bool]], frozenset[str], RowValues]:
    """The notice's inserted fields (all but the id), their names, and their preparation for the database.

    Each field comes with what ``_notice_values`` needs of it: its name, whether it is a relation, whether it
    takes the time now.
    """
    fields = [f for f in Notice._meta.concrete_fields if not f.primary_key]
    plan = [
        (f, f.name, f.is_relation, bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)))
        for f in fields
    ]
    return plan, frozenset(f.name for f in fields), RowValues(fields)


def _notice_values(dedupe_key: str, defaults: dict[str, Any], connection: Any) -> list[Any]:
    """The parameters ``Notice(dedupe_key=…, **defaults)`` would save, without building the instance.

    Field by field what ``Model.__init__`` and ``pre_save`` do for a new row: the value given (a related object
    by its id), else the field's default; ``auto_now`` fields take the time now.
    """
    plan, names, prepare = _notice_row()
    if not names.issuperset(defaults):
        raise TypeError(f"Notice has no field {sorted(set(defaults) - names)!r}")
    values: list[Any] = []
    for field, name, relation, now in plan:
        value: Any
        if now:
            value = timezone.now()
        elif name == "dedupe_key":
            value = dedupe_key
        elif name in defaults:
            value = defaults[name]
            if relation and value is not None:
                value = value.pk
        else:
            value = field.get_default()
        values.append(value)
    return prepare(values, connection)


def upsert_notice(
    dedupe_key: str, defaults: dict[str, Any], *, trail_entry: TrailEntry | None = None, folded: bool = False
) -> tuple[Notice, bool, bool]:
    """The notice with this key, locked, created from ``defaults`` if there is none: ``(notice, created, linked)``.

    PostgreSQL only, one statement: ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (the no-op update locks an
    existing row like ``select_for_update``) and, when the notice is the one ``queue_notice`` keeps (new, not
    folded, or not dead), the link to ``trail_entry``. An unsaved ``trail_entry`` (``trail.new_entry``) is
    inserted by the same statement. ``linked``: the link is written (or was already there).
    """
    using = Notice.objects.db
    connection = connections[using]
    citus = on_citus(using)  # three statements there: the entry, the notice, the link (_citus_upsert_statement)
    if citus and trail_entry is not None and trail_entry.pk is None:
        save_entry(trail_entry)
    insert = entry_insert(trail_entry) if trail_entry is not None and trail_entry.pk is None else None
    if citus:
        sql, _fields, cols = _citus_upsert_statement(using)
    else:
        sql, _fields, cols = _upsert_statement(using, insert.sql if insert is not None else None)
    params = [*(insert.params if insert is not None else [])]
    params += _notice_values(dedupe_key, defaults, connection)
    entry_id = trail_entry.pk if trail_entry is not None else None
    if not citus:
        if insert is None:
            params += [entry_id, entry_id]
        params += [folded, *sorted(DEAD_STATUSES)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    *values, created, saved_entry_id = rows[0]
    if insert is not None:
        entry_id = insert.saved(saved_entry_id).pk
    (values,) = converted_rows(using, "notifications.notice_upsert", cols, [values])
    found = Notice.from_db(using, [f.attname for f in Notice._meta.concrete_fields], values)
    if created:  # what save() leaves on a new instance: the related objects given in ``defaults``
        for name in ("profile", "practitioner", "recipient_practitioner"):
            if defaults.get(name) is not None:
                Notice._meta.get_field(name).set_cached_value(found, defaults[name])  # type: ignore[union-attr]  # FKs
    linked = entry_id is not None and (created or not folded or found.status not in DEAD_STATUSES)
    if linked and citus:  # the condition of the link's CTE, decided here on the row the upsert returned
        with connection.cursor() as cursor:
            cursor.execute(_link_statement(using), [found.pk, entry_id])
    return found, bool(created), linked


def upsert_notice_orm(
    dedupe_key: str, defaults: dict[str, Any], *, trail_entry: TrailEntry | None = None, folded: bool = False
) -> tuple[Notice, bool, bool]:
    """Reference of ``upsert_notice``, in plain ORM; what runs on SQLite (which has no such upsert)."""
    if trail_entry is not None and trail_entry.pk is None:
        save_entry(trail_entry)
    notice, created = Notice.objects.select_for_update().get_or_create(dedupe_key=dedupe_key, defaults=defaults)
    linked = trail_entry is not None and (created or not folded or notice.status not in DEAD_STATUSES)
    if linked and trail_entry is not None:  # linked implies an entry; said again for the type checker
        notice.trail_entries.add(trail_entry)
    return notice, created, linked
