"""Benchmark: the same consultation workload on plain PostgreSQL and on a Citus cluster, in one run.

    .venv/bin/python bench/scale.py [--quick] [--pg-url URL] [--citus-url URL]

``--pg-url`` (default DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres) names a plain PostgreSQL
server; ``--citus-url`` (default CITUS_URL, else postgres://postgres@127.0.0.1:5433/carnet_citus) a database of a
Citus coordinator that knows its workers (``.ci/citus-cluster.sh start``). On each, the bench recreates its own
database (``carnet_bench_scale``, on every node for Citus), migrates it, lays it out with ``citus_distribute``
(Citus only, 32 shards a table) and loads the same national-mix dataset as ``bench/access.py`` (same seed, same
rows, by COPY; no CLUSTER, which Citus does not do on distributed tables).

Each side runs in its own process (Django binds one database per process); the parent sends both the same
rounds of consultations, alternating which goes first, so the load of a shared machine falls on both alike.
A consultation goes through Carnet's own door and actions, as a practitioner's browser would make them do:

1. ``find_profile`` by NIR and birth date (A11);
2. ``open_record`` (A1-A7, trail entry T1 and consultation notice N1 in one transaction);
3. the first page (20) of ``visible_documents``;
4. ``open_document`` on the newest of them (traced), with the opened record's id as the portal and the API pass it;
5. every ``--deposit-every``-th consultation (default 4), ``do_deposit_document`` of a small PDF (A10, T1, N7).

The after-commit hand-off of notices to the broker is a no-op (not database work). Failed consultations are
counted by cause and left out of the rates. Then, on Citus, the statements of ``--router-consults``
consultations are captured (``connection.execute_wrapper``), and each one that touches a distributed table is
EXPLAINed: it is routed when its distributed plan is one task (``bench/citusdb.py``). The multi-task ones are
listed on stderr. Last stdout line: ``{"documents", "pg_consults_per_s", "citus_consults_per_s",
"citus_ratio", "router_share", "pg_p99_ms", "citus_p99_ms", …}``. Targets: citus_ratio >= 0.5,
router_share = 1.0.
"""

import argparse
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from pgdb import bench_url, log, recreate_database  # bench/pgdb.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PAGE = 20
SHARDS = 32


# --- one side (a child process) -----------------------------------------------------------------------------


def _setup_side(side: str, base_url: str, database: str, documents: int, seed: int) -> dict:
    """Create, migrate, lay out (Citus) and load the side's database; returns the dataset's summary."""
    import psycopg
    from access import load  # bench/access.py: the national-mix dataset
    from django.core.management import call_command

    if side == "citus":
        from citusdb import recreate_citus_database

        recreate_citus_database(base_url, database)
    else:
        recreate_database(base_url, database)
    started = time.perf_counter()
    call_command("migrate", verbosity=0, skip_checks=True)
    if side == "citus":
        call_command("citus_distribute", shard_count=SHARDS, verbosity=0)
    log(f"[{side}] migrated{' and distributed' if side == 'citus' else ''} in {time.perf_counter() - started:.1f} s")
    url = bench_url(base_url, database)
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        if side == "citus":
            # One transaction writes a reference table (the directory) and then the shards: sequential keeps
            # Citus from opening parallel connections it could not mix with the reference table's writes.
            conn.execute("SET citus.multi_shard_modify_mode TO 'sequential'")
        data = load(conn, documents, random.Random(seed))
        conn.commit()
        log(f"[{side}] loaded {documents} documents in {time.perf_counter() - started:.1f} s")
        from access_control.models import Block, CategoryMask, TrailEntry, TreatingRightsGrant
        from practitioners.models import Practitioner
        from records.models import Document, Profile

        for model in (Practitioner, Profile, Document, Block, CategoryMask, TreatingRightsGrant, TrailEntry):
            table = model._meta.db_table  # the loader gave explicit ids: move each sequence past them
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"coalesce((SELECT max(id) FROM {table}), 1))"
            )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return data


def _pairs(data: dict, count: int, seed: int) -> list[tuple[int, int, str, object]]:
    """(practitioner, heavy profile, its NIR and birth date) the rules let open: active doctors, open, no block.

    The NIR and birth date are what the practitioner reads from the patient's card: not the bench's queries.
    """
    from practitioners.models import Practitioner
    from records.models import Profile

    doctors = list(
        Practitioner.objects.filter(
            profession__code="10", status="active", is_insurer_physician=False, is_occupational_physician=False
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    heavy = set(data["heavy"])
    cards = {
        pk: (nir, birth_date)
        for pk, nir, birth_date in Profile.objects.filter(state__in=("open", "active"), emergency_access_opt_out=False)
        .order_by("pk")
        .values_list("pk", "nir", "birth_date")
        if pk in heavy
    }
    profiles = sorted(cards)
    blocked = {tuple(pair) for pair in data["blocks"]}
    rng = random.Random(seed)
    pairs: list[tuple[int, int, str, object]] = []
    while len(pairs) < count:
        practitioner_id, profile_id = rng.choice(doctors), rng.choice(profiles)
        if (profile_id, practitioner_id) not in blocked:
            pairs.append((practitioner_id, profile_id, *cards[profile_id]))
    return pairs


def consult(practitioner_id: int, nir: str, birth_date, *, deposit: bool, steps: dict | None = None) -> None:
    """One consultation through the door and the actions; raises when a step does not do what it should.

    ``steps`` collects each completed step's time (ms) under its name.
    """
    from access_control.actions import do_deposit_document
    from access_control.api import find_profile, open_document, open_record, visible_documents
    from practitioners.models import Practitioner

    steps = {} if steps is None else steps
    began = time.perf_counter()

    def done(step: str) -> None:
        nonlocal began
        now = time.perf_counter()
        steps.setdefault(step, []).append((now - began) * 1000)
        began = now

    practitioner = Practitioner.objects.select_related("profession").get(pk=practitioner_id)
    profile = find_profile(practitioner, nir=nir, birth_date=birth_date)
    if profile is None:
        raise LookupError("find_profile: not found")
    done("find")
    decision = open_record(practitioner, profile)
    if not decision.allowed:
        raise PermissionError(f"open_record: {decision.reason}")
    done("open_record")
    page = list(visible_documents(practitioner, profile)[:PAGE])
    done("list")
    if page and open_document(practitioner, page[0].pk, profile_id=profile.pk) is None:  # as the portal calls it
        raise PermissionError("open_document: refused")
    done("open_document")
    if deposit:
        do_deposit_document(
            profile,
            actor=practitioner,
            fileobj=io.BytesIO(PDF),
            document_type="11502-2",
            title="Compte rendu de biologie",
        )
        done("deposit")


def _cause(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)
    where = next(
        (f for f in reversed(frame) if "/bench/" not in f.filename and "site-packages" not in f.filename), None
    )
    place = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}{place}"


def run_round(pairs: list[tuple[int, int]], start: int, count: int, deposit_every: int) -> dict:
    """``count`` consultations from ``pairs[start:]``: their latencies (ms) and the causes of failures."""
    from django.db import connection

    latencies, errors, steps = [], {}, {}
    for n in range(start, start + count):
        practitioner_id, _profile_id, nir, birth_date = pairs[n % len(pairs)]
        began = time.perf_counter()
        try:
            consult(practitioner_id, nir, birth_date, deposit=n % deposit_every == 0, steps=steps)
        except Exception as error:  # counted, reported and left out of the rates
            cause = _cause(error)
            errors[cause] = errors.get(cause, 0) + 1
            if connection.in_atomic_block:  # never: the door's transactions are its own
                raise
            continue
        latencies.append((time.perf_counter() - began) * 1000)
    return {"latencies": latencies, "errors": errors, "steps": steps}


def _statements(pairs, start: int, count: int, deposit_every: int) -> list[tuple[str, tuple]]:
    from django.db import connection

    captured: list[tuple[str, tuple]] = []

    def capture(execute, sql, params, many, context):
        if not many:
            captured.append((sql, tuple(params) if params else ()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        run_round(pairs, start, count, deposit_every)
    return captured


def _shape(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def router_report(pairs, start: int, count: int, deposit_every: int) -> dict:
    """EXPLAIN every captured statement that touches a distributed table; which run on one shard."""
    from citusdb import routed, task_counts
    from django.db import connection

    from records.citus import DISTRIBUTED

    names = re.compile(r"\b(" + "|".join(re.escape(d.table) for d in DISTRIBUTED) + r")\b")
    statements = _statements(pairs, start, count, deposit_every)
    per_shape: dict[str, dict] = {}
    total = hot = one = 0
    for sql, params in statements:
        total += 1
        if not names.search(sql):
            continue
        hot += 1
        shape = _shape(sql)
        known = per_shape.get(shape)
        if known is None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN " + sql, params)
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                known = {"routed": routed(plan), "tasks": task_counts(plan), "count": 0, "error": ""}
            except Exception as error:  # Citus refuses to plan it: not routed
                known = {"routed": False, "tasks": [], "count": 0, "error": str(error).splitlines()[0][:200]}
            per_shape[shape] = known
        known["count"] += 1
        one += known["routed"]
    multi = [
        {"statement": shape[:300], "executions": v["count"], "tasks": v["tasks"], "error": v["error"]}
        for shape, v in per_shape.items()
        if not v["routed"]
    ]
    return {
        "statements": total,
        "hot_statements": hot,
        "routed": one,
        "router_share": round(one / hot, 4) if hot else 0.0,
        "distinct": len(per_shape),
        "distinct_routed": sum(1 for v in per_shape.values() if v["routed"]),
        "multi_task": multi,
    }


def child(args) -> int:
    """One side: set up, then answer the parent's commands (one JSON line each) until ``quit``."""
    tmp = tempfile.mkdtemp(prefix=f"carnet-scale-{args.child}-")
    os.environ["CARNET_VAR_DIR"] = tmp  # deposited bodies go to a throw-away directory
    os.environ["DATABASE_URL"] = bench_url(args.url, args.database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("CARNET_MASTER_KEY", "bench:" + "QkVOQ0hCRU5DSEJFTkNIQkVOQ0hCRU5DSEJFTkNIMTI=")
    import django

    django.setup()
    import notifications.outbox

    notifications.outbox.enqueue_delivery = lambda notice_id, profile_id=None: (
        None
    )  # broker hand-off: not database work

    data = _setup_side(args.child, args.url, args.database, args.documents, args.seed)
    from django.db import connections

    # The app's processes connect after migrate and citus_distribute: their sessions (and on Citus the
    # coordinator's connections to the workers) start with the database's settings that the layout applied.
    connections.close_all()
    pairs = _pairs(data, 2000, args.seed)

    def answer(payload: dict) -> None:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    answer({"ready": True, "pairs": len(pairs)})
    for line in sys.stdin:
        command = json.loads(line)
        if command["do"] == "run":
            answer(run_round(pairs, command["start"], command["count"], args.deposit_every))
        elif command["do"] == "router":
            answer(router_report(pairs, command["start"], command["count"], args.deposit_every))
        elif command["do"] == "count":
            from access_control.models import TrailEntry
            from records.models import Document

            answer({"documents": Document.objects.count(), "trail": TrailEntry.objects.count()})
        else:
            break
    return 0


# --- the parent -------------------------------------------------------------------------------------------


class Side:
    """A child process running one side; one JSON answer per command."""

    def __init__(self, side: str, url: str, args):
        command = [sys.executable, __file__, "--child", side, "--url", url, "--database", args.database]
        command += ["--documents", str(args.documents), "--seed", str(args.seed)]
        command += ["--deposit-every", str(args.deposit_every)]
        self.name = side
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def receive(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: the side stopped (see stderr)")
        return json.loads(line)

    def ask(self, **command) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.receive()

    def close(self) -> None:
        if self.process.poll() is None:
            self.ask_quit()

    def ask_quit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write('{"do": "quit"}\n')
        self.process.stdin.close()
        self.process.wait(timeout=60)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else (values[0] if values else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100 000 documents, 400 consultations a side")
    parser.add_argument("--consults", type=int, default=None, help="measured consultations a side (default 1 000)")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds the consultations are split in")
    parser.add_argument("--deposit-every", type=int, default=4)
    parser.add_argument("--router-consults", type=int, default=20)
    parser.add_argument(
        "--pg-url", default=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument(
        "--citus-url", default=os.environ.get("CITUS_URL") or "postgres://postgres@127.0.0.1:5433/carnet_citus"
    )
    parser.add_argument("--database", default="carnet_bench_scale")
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--child", choices=("pg", "citus"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.quick and args.documents == 1_000_000:
        args.documents = 100_000
    consults = args.consults or (400 if args.quick else 1000)
    per_round = max(1, consults // args.rounds)

    load_before = os.getloadavg()
    log(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    sides: dict[str, Side] = {}
    try:
        for name, url in (("pg", args.pg_url), ("citus", args.citus_url)):  # one after the other, not competing
            sides[name] = Side(name, url, args)
            log(f"[{name}] ready: {sides[name].receive()}")
        warm = 40
        for side in sides.values():
            side.ask(do="run", start=0, count=warm)
        results: dict[str, dict] = {
            name: {"latencies": [], "errors": {}, "seconds": 0.0, "steps": {}} for name in sides
        }
        start = warm
        for r in range(args.rounds):
            order = ["pg", "citus"] if r % 2 == 0 else ["citus", "pg"]
            for name in order:
                began = time.perf_counter()
                got = sides[name].ask(do="run", start=start, count=per_round)
                results[name]["seconds"] += time.perf_counter() - began
                results[name]["latencies"] += got["latencies"]
                for step, times in got["steps"].items():
                    results[name]["steps"].setdefault(step, []).extend(times)
                for cause, n in got["errors"].items():
                    results[name]["errors"][cause] = results[name]["errors"].get(cause, 0) + n
            start += per_round
        router = sides["citus"].ask(do="router", start=start, count=args.router_consults)
        counts = {name: side.ask(do="count") for name, side in sides.items()}
    finally:
        for side in sides.values():
            side.close()
    load_after = os.getloadavg()

    rates = {}
    for name, result in results.items():
        done = len(result["latencies"])
        rates[name] = done / result["seconds"] if result["seconds"] else 0.0
        lat = result["latencies"]
        log(
            f"[{name}] {done} consultations in {result['seconds']:.1f} s: {rates[name]:.1f}/s, "
            f"p50 {statistics.median(lat) if lat else 0:.1f} ms, p99 {p99(lat):.1f} ms; "
            f"failed {sum(result['errors'].values())}; now {counts[name]}"
        )
        log(
            "    steps (p50 ms, completed): "
            + ", ".join(f"{step} {statistics.median(t):.1f} ({len(t)})" for step, t in result["steps"].items())
        )
        for cause, n in sorted(result["errors"].items(), key=lambda item: -item[1]):
            log(f"    {n:5d} x {cause}")
    log(
        f"[citus] router: {router['routed']}/{router['hot_statements']} executions of per-patient statements on one "
        f"shard ({router['distinct_routed']}/{router['distinct']} distinct); {router['statements']} statements "
        f"captured in {args.router_consults} consultations"
    )
    for item in router["multi_task"]:
        log(f"    multi-task x{item['executions']} tasks={item['tasks']} {item['error']}\n      {item['statement']}")
    log(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    pg_lat, citus_lat = results["pg"]["latencies"], results["citus"]["latencies"]
    result = {
        "documents": args.documents,
        "pg_consults_per_s": round(rates["pg"], 2),
        "citus_consults_per_s": round(rates["citus"], 2),
        "citus_ratio": round(rates["citus"] / rates["pg"], 4) if rates["pg"] else 0.0,
        "router_share": router["router_share"],
        "pg_p99_ms": round(p99(pg_lat), 2),
        "citus_p99_ms": round(p99(citus_lat), 2),
        "pg_failed": sum(results["pg"]["errors"].values()),
        "citus_failed": sum(results["citus"]["errors"].values()),
        "consults": len(pg_lat) + sum(results["pg"]["errors"].values()),
        "load_average": round(load_before[0], 2),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
