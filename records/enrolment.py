"""Bulk enrolment from the health-insurance roster (rule L1), loaded with COPY.

``enrol_roster(fileobj, actor=…)`` reads a roster file as a stream (``records.roster``: format, validation,
``RowError``) and loads the good rows in chunks of ``CHUNK_ROWS``, one transaction per chunk
(``records.enrolment_copy``: a chunk writes exactly what ``do_enrol_profile`` writes for one person, with one
``COPY`` per table). A bad row never stops the others; a re-run creates nothing; minors listed before their
representative are set aside (at most ``MAX_DEFERRED``); memory stays flat. After each chunk commits, its notice
ids go to the broker (ids only; the sweep picks them up if the broker is down, N5).

Why COPY, why the provisional code is hashed with ``BULK_CODE_ROUNDS`` rounds, and the measured figures: see
docs/adr/0003-enrolment-copy.md.
"""

import itertools
import logging
import multiprocessing
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from celery import shared_task
from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.utils import timezone

from . import enrolment_copy
from .actors import Actor, is_staff
from .enrolment_copy import UNKNOWN_REPRESENTATIVE, chunk_writer
from .roster import RosterRow, RowError, UncheckedRow, read_roster
from .transitions import require_actor

logger = logging.getLogger(__name__)

CHUNK_ROWS = 5000  # rows per transaction
ENQUEUE_BATCH = 1000  # notice ids per broker message
MAX_KEPT_ERRORS = 1000  # errors kept in the report (on_error sees every one)
MAX_DEFERRED = 50_000  # minors kept aside until their representative's row is loaded (bounded memory)


@dataclass
class EnrolmentReport:
    """What ``enrol_roster`` did with a file: counts, and the first errors."""

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


# --- Loading the chunks ----------------------------------------------------------------------------------


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


def _checked(rows: Sequence[RosterRow | UncheckedRow], today: date) -> tuple[list[RosterRow], list[RowError]]:
    """Validate the rows read unchecked (in the loading process, so that validation runs in parallel too)."""
    good: list[RosterRow] = []
    errors: list[RowError] = []
    for row in rows:
        checked = row.check(today) if isinstance(row, UncheckedRow) else row
        (errors if isinstance(checked, RowError) else good).append(checked)  # type: ignore[arg-type]
    return good, errors


def _load_chunk(
    rows: Sequence[RosterRow | UncheckedRow], *, actor: Actor | None, writer, today: date, defer: bool = False
) -> _ChunkSummary:
    good, refused = _checked(rows, today)
    if not good:
        return _ChunkSummary(0, 0, 0, refused, [])
    for attempt in range(_RACE_ATTEMPTS):
        try:
            with transaction.atomic(durable=True):
                result = enrolment_copy.write_chunk(good, actor=actor, writer=writer, defer=defer)
                ids = result.rows.pending_notice_ids
                transaction.on_commit(partial(enqueue_notices, ids))
            built = result.rows
            return _ChunkSummary(
                built.created, result.already_enrolled, built.undeliverable, refused + result.errors, result.deferred
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

    def __init__(self, actor: Actor | None, today: date):
        self.actor, self.writer, self.today = actor, chunk_writer(), today

    def submit(self, rows: list, *, defer: bool = True) -> list[_ChunkSummary]:
        return [_load_chunk(rows, actor=self.actor, writer=self.writer, today=self.today, defer=defer)]

    def finish(self) -> list[_ChunkSummary]:
        return []


_worker_state: dict = {}


def _load_chunk_in_worker(rows: list[UncheckedRow], actor_id: int | None, today: date) -> _ChunkSummary:
    if "writer" not in _worker_state:
        from .models import User

        _worker_state["actor"] = User.objects.get(pk=actor_id) if actor_id is not None else None
        _worker_state["writer"] = chunk_writer()
    return _load_chunk(rows, actor=_worker_state["actor"], writer=_worker_state["writer"], today=today, defer=True)


class _ParallelLoader:
    """Chunks loaded by ``workers`` forked processes, each with its own connection and transactions.

    At most ``2 x workers`` chunks are in flight (memory stays bounded); results come back in file order.
    Rows of different chunks may now be loaded concurrently: a NIR repeated across two of them is caught by
    the unique index and its chunk retried (``_load_chunk``); a minor whose representative is not enrolled
    yet (it may sit in a chunk another process is loading) comes back deferred, and ``enrol_roster`` loads
    the deferred rows once every chunk is in (they are few: families that straddle two chunks).
    """

    def __init__(self, actor: Actor | None, workers: int, today: date):
        connections.close_all()  # the children must not share this process's connection
        context = multiprocessing.get_context("fork")
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        self.actor_id, self.today = (actor.pk if actor is not None else None), today
        self.window = 2 * workers
        self.pending: deque = deque()

    def submit(self, rows: list[UncheckedRow]) -> list[_ChunkSummary]:
        self.pending.append(self.pool.submit(_load_chunk_in_worker, rows, self.actor_id, self.today))
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
    actor: Actor | None = None,
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
    require_actor(actor is None or is_staff(actor))
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

    # Forking copies only the calling thread: a process running other threads (a web server, a test session
    # with a live server) could hand its children locks held forever. The command is single-threaded.
    parallel = (
        workers > 1
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and threading.active_count() == 1
    )
    today = timezone.localdate()
    # Reads the header now: a bad file fails before any process starts. Rows are validated by the loaders.
    rows = read_roster(fileobj, check=False)
    loader = _ParallelLoader(actor, workers, today) if parallel else _SerialLoader(actor, today)
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
        serial = _SerialLoader(actor, today)
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
