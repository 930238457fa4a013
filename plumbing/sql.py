"""Rows of the statements written by hand on hot paths (the apps' ``fast_sql`` modules), converted as the ORM would.

``SQLCompiler.get_converters`` costs ~0.1 ms of Python a call for a wide row; the statements it serves run on
every consultation, so their converters are worked out once per database connection and statement.
"""

import weakref

from django.db import connections
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
