"""Rows of hand-written statements converted as the ORM would, and ORM querysets compiled once.

The statements written by hand on hot paths live in the apps' ``fast_sql`` modules; ``CompiledQuery`` keeps the
ORM's own SQL of a queryset that only changes in a few values.
``SQLCompiler.get_converters`` costs ~0.1 ms of Python a call for a wide row; the statements it serves run on
every consultation, so their converters are worked out once per database connection and statement.
"""

import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import connections, models
from django.db.models import QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]  # public, not in the stubs
from django.db.models.sql import Query

_converters: "weakref.WeakKeyDictionary[object, dict[str, tuple]]" = weakref.WeakKeyDictionary()


def converted_rows(using: str, statement: str, cols: list, rows: list) -> list[list]:
    """``rows`` with the converters of ``cols`` (the ORM's ``Col`` expressions of the selected fields) applied.

    ``statement`` names the hand-written statement: its converters are cached under that name, per connection
    (each thread has its own connection, and a compiler is bound to one).
    """
    connection = connections[using]
    cached = _converters.setdefault(connection, {})
    if statement not in cached:
        compiler = Query(None).get_compiler(using)
        cached[statement] = (compiler, compiler.get_converters(cols))
    compiler, converters = cached[statement]
    if not converters:
        return [list(row) for row in rows]
    return [list(row) for row in compiler.apply_converters(rows, converters)]


# Fields whose ``get_db_prep_save`` gives back a value of this exact type unchanged on every backend (Django 5.2:
# ``CharField.to_python`` returns a ``str`` as it is, and no backend adapts text), and the fields that give back
# ``None`` for ``None``. Not integers: the PostgreSQL backend wraps them in psycopg's sized types.
_UNCHANGED: dict[type, type] = {models.CharField: str, models.TextField: str}
_NONE_UNCHANGED = frozenset(
    {
        *_UNCHANGED,
        models.IntegerField,
        models.BigIntegerField,
        models.SmallIntegerField,
        models.PositiveIntegerField,
        models.PositiveBigIntegerField,
        models.PositiveSmallIntegerField,
        models.DateTimeField,
        models.ForeignKey,
        models.BinaryField,
        models.GenericIPAddressField,
    }
)


class RowValues:
    """``get_db_prep_save`` for each value of a hand-written INSERT's row, skipping the calls that change nothing.

    The calls skipped would give the value back unchanged: a ``str`` (exactly, not a subclass or a lazy string) for a
    text field, ``None`` for the usual fields, and on PostgreSQL an aware ``datetime`` for a ``DateTimeField``
    (the backend passes it to psycopg as it is). A hot INSERT of ~20 columns spent most of its Python in them
    (bench/README.md, access.py). Any other value goes through ``get_db_prep_save``.
    """

    def __init__(self, fields: list):
        self.fields = [
            (f, _UNCHANGED.get(type(f)), type(f) in _NONE_UNCHANGED, type(f) is models.DateTimeField) for f in fields
        ]

    def __call__(self, values: Any, connection: Any) -> list[Any]:
        postgresql = connection.vendor == "postgresql"
        prepared = []
        for (field, unchanged, none_unchanged, moment), value in zip(self.fields, values, strict=True):
            if (
                type(value) is unchanged
                or (value is None and none_unchanged)
                or (moment and postgresql and type(value) is datetime and value.tzinfo is not None)
            ):
                prepared.append(value)
            else:
                prepared.append(field.get_db_prep_save(value, connection))
        return prepared


def slot_positions(slots: tuple[Any, ...], params: Any) -> list[tuple[int, ...]]:
    """Where each slot value stands among a compiled query's parameters (all its places, by type and value)."""
    positions = []
    for slot in slots:
        found = tuple(i for i, value in enumerate(params) if type(value) is type(slot) and value == slot)
        if not found:
            raise AssertionError(f"The slot {slot!r} is not among the compiled query's parameters.")
        positions.append(found)
    return positions


class CompiledQuery:
    """A model queryset the ORM compiles once per connection; each run puts new values in its parameter slots.

    For hot reads that never change but for a few values: compiling a ``select_related`` queryset costs about a
    millisecond of Python on every call, its execution a fifth of that (bench/README.md, api.py). ``build`` is
    the plain-ORM reference: called with the ``slots`` (sentinel values no real row has), it returns the queryset
    whose SQL is kept; ``instances(*values)`` then runs that SQL with ``values`` in the slots and builds the
    model instances (with their ``select_related`` objects) as ``QuerySet.__iter__`` would. Any ORM queryset
    without slicing placeholders fits; the SQL is still the ORM's, not written by hand.
    """

    def __init__(self, build: Callable[..., QuerySet[Any]], *slots: Any):
        self.build = build
        self.slots = slots
        self._compiled: weakref.WeakKeyDictionary[object, tuple] = weakref.WeakKeyDictionary()

    def _compile(self, using: str) -> tuple:
        connection = connections[using]
        if connection not in self._compiled:
            compiler = self.build(*self.slots).query.get_compiler(using)
            sql, params = compiler.as_sql()
            positions = slot_positions(self.slots, params)
            select, klass_info = compiler.select, compiler.klass_info
            fields = klass_info["select_fields"]
            start, end = fields[0], fields[-1] + 1
            self._compiled[connection] = (
                sql,
                tuple(params),
                positions,
                compiler,
                compiler.get_converters([column[0] for column in select[: compiler.col_count]]),
                klass_info["model"],
                [column[0].target.attname for column in select[start:end]],
                (start, end),
                get_related_populators(klass_info, select, using),
                dict(compiler.annotation_col_map),
            )
        return self._compiled[connection]

    def instances(self, *values: Any, using: str = "default") -> list[Any]:
        """The model instances of the compiled queryset with ``values`` in place of the slots."""
        sql, params, positions, compiler, converters, model, attnames, (start, end), populators, annotations = (
            self._compile(using)
        )
        bound = list(params)
        for value, found in zip(values, positions, strict=True):
            for i in found:
                bound[i] = value
        with connections[using].cursor() as cursor:
            cursor.execute(sql, bound)
            rows = cursor.fetchall()
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        found_objects = []
        for row in rows:
            instance = model.from_db(using, attnames, row[start:end])
            for populator in populators:
                populator.populate(row, instance)
            for name, position in annotations.items():
                setattr(instance, name, row[position])
            found_objects.append(instance)
        return found_objects


class CompiledRows:
    """A ``values()`` queryset the ORM compiles once per connection and ``key``, read a page at a time or whole.

    ``CompiledQuery`` for rows: ``build(key, *slots)`` is the plain-ORM reference (``key`` picks among a few shapes,
    e.g. an access mode); ``rows(key, *values, limit=, offset=)`` runs its SQL with ``values`` in the slots and the
    page's bounds bound as parameters, and gives the dicts ``QuerySet.values()`` would give for that slice
    (``tuples`` the rows of ``values_list()``). A document listing compiled this way skips ~0.5 ms of Python per
    call (bench/README.md, api.py). The queryset must be ordered and unsliced; its SQL is still the ORM's.
    """

    def __init__(self, build: Callable[..., QuerySet[Any]], *slots: Any):
        self.build = build
        self.slots = slots
        self._compiled: weakref.WeakKeyDictionary[object, dict[Any, tuple]] = weakref.WeakKeyDictionary()

    def _compile(self, key: Any, using: str) -> tuple:
        per_key = self._compiled.setdefault(connections[using], {})
        if key not in per_key:
            queryset = self.build(key, *self.slots)
            query = queryset.query
            if query.low_mark or query.high_mark is not None or not query.order_by:
                raise AssertionError("CompiledRows needs an ordered, unsliced queryset.")
            compiler = query.get_compiler(using)
            sql, params = compiler.as_sql()
            positions = slot_positions(self.slots, params)
            names = (
                list(query.selected)
                if query.selected
                else [
                    *query.extra_select,
                    *query.values_select,
                    *query.annotation_select,
                ]
            )
            converters = compiler.get_converters([column[0] for column in compiler.select[: compiler.col_count]])
            per_key[key] = (sql, tuple(params), positions, compiler, converters, names)
        return per_key[key]

    def tuples(
        self, key: Any, *values: Any, limit: int | None = None, offset: int = 0, using: str = "default"
    ) -> tuple[list[str], list[Sequence[Any]]]:
        """The column names and rows of ``build(key, *values)[offset : offset + limit]``.

        All of them without ``limit``; each row a sequence in ``values_list()`` order.
        """
        sql, params, positions, compiler, converters, names = self._compile(key, using)
        bound = list(params)
        for value, found in zip(values, positions, strict=True):
            for i in found:
                bound[i] = value
        if limit is not None:
            sql, bound = f"{sql} LIMIT %s OFFSET %s", [*bound, limit, offset]
        elif offset:
            raise ValueError("An offset needs a limit.")
        with connections[using].cursor() as cursor:
            cursor.execute(sql, bound)
            rows = cursor.fetchall()
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        return names, rows

    def rows(
        self, key: Any, *values: Any, limit: int | None = None, offset: int = 0, using: str = "default"
    ) -> list[dict]:
        """The rows ``build(key, *values)[offset : offset + limit]`` gives, as ``values()`` dicts.

        All of them without ``limit``.
        """
        names, rows = self.tuples(key, *values, limit=limit, offset=offset, using=using)
        return [dict(zip(names, row, strict=True)) for row in rows]
