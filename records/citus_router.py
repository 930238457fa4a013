"""Whether a statement runs on one shard of a Citus cluster: capture a path's statements, ``EXPLAIN`` each.

A hot path of one patient must be served by one shard (docs/scaling.md). Citus says so in its plan: a statement it
routes to one shard has a distributed plan with ``Task Count: 1``. ``captured_statements`` records what a piece of
code sends to the database (``connection.execute_wrapper``); ``shard_tasks`` explains one statement and returns its
task count; ``statements_off_one_shard`` lists the captured statements that touch distributed tables and are not
routed to one shard. For tests (tests/test_citus_routing.py) and benchmarks; Citus only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from .citus import BY_NIR, DISTRIBUTED

# Statements that are not plans: transaction control and settings.
_NOT_PLANNED = re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT|SET|SHOW)\b", re.IGNORECASE)
_SHARDED = re.compile(r'\b"?(' + "|".join(re.escape(d.table) for d in (*DISTRIBUTED, *BY_NIR)) + r')"?\b')


@dataclass(frozen=True)
class Statement:
    """One statement as the code sent it: its SQL and its parameters."""

    sql: str
    params: Sequence[Any] | None

    @property
    def touches_shards(self) -> bool:
        """It names a distributed (per-patient) table of ``records.citus``."""
        return bool(_SHARDED.search(self.sql))


@dataclass
class Captured:
    """The statements sent inside a ``captured_statements`` block, in order."""

    statements: list[Statement] = field(default_factory=list)


@contextmanager
def captured_statements(using: str = DEFAULT_DB_ALIAS) -> Iterator[Captured]:
    """Record every statement the block sends through Django's connection (run as usual)."""
    captured = Captured()

    def record(execute, sql, params, many, context):
        captured.statements.append(Statement(sql, params))
        return execute(sql, params, many, context)

    with connections[using].execute_wrapper(record):
        yield captured


def shard_tasks(statement: Statement, using: str = DEFAULT_DB_ALIAS) -> int | None:
    """How many shard tasks Citus plans for the statement (``EXPLAIN``, not run).

    None for a plan Citus does not distribute (no distributed table in it) and for what is not a plan.
    """
    if _NOT_PLANNED.match(statement.sql):
        return None
    with connections[using].cursor() as cursor:
        cursor.execute(f"EXPLAIN {statement.sql}", statement.params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    counts = [int(n) for n in re.findall(r"Task Count: (\d+)", plan)]
    return max(counts) if counts else None


def is_routed(statement: Statement, using: str = DEFAULT_DB_ALIAS) -> bool:
    """The statement runs on one shard (one task in every distributed part of its plan)."""
    return shard_tasks(statement, using) == 1


def statements_off_one_shard(captured: Captured, using: str = DEFAULT_DB_ALIAS) -> list[tuple[Statement, int | None]]:
    """The captured statements on per-patient tables that Citus does not route to one shard, with their task count."""
    return [
        (statement, tasks)
        for statement in captured.statements
        if statement.touches_shards and (tasks := shard_tasks(statement, using)) != 1
    ]
