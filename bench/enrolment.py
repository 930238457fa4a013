"""Benchmark: the roster enrolment (L1) against the floor: a COPY of exactly the rows it writes, pre-built.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/enrolment.py [--rows N | --quick]
    … --citus [--citus-url postgres://postgres@127.0.0.1:5433/carnet_citus]   # the same on a Citus cluster too

Creates its own database (``carnet_bench_enrolment`` next to the one DATABASE_URL names; on Citus on every node,
laid out by ``citus_distribute``) and migrates it, writes a valid roster of ``--rows`` people to a temporary file
(streamed: valid NIR keys, 1 in 5 with an e-mail, 1 in 20 a minor whose legal representative is the row before,
1 in 50 without a postal address), then in one run:

* **ours**: ``manage.py enroll_patients FILE`` (``--workers``, default 2): validation of every row, then per
  person the profile with its provisional-code hash, its trail chain (hash-chained entries), the pre-opening
  notice with its sealed code, the link between them, in 5 000-row transactions, and the after-commit
  hand-off of the notice ids. Peak memory is read here, before the floor builds its rows;
* **floor**: the five tables emptied (TRUNCATE), then exactly the rows the rules require per person (profile
  with its code hash, NIR index row, trail entry or entries, pre-opening notice, notice-entry link), built
  beforehand in memory by ``records.enrolment_copy.build_rows`` from the validated file (untimed), go in with
  one binary ``COPY`` per table, in one transaction, committed (timed). At most ``--floor-rows`` (100 000)
  people: the floor's rows are all in memory at once.

The broker hand-off is counted, not sent (``apply_async`` replaced by a counter: no broker needed; it is one
message per 1 000 notices). After ours it checks the counts and a sample of trail chains. Details go to stderr;
the last stdout line is ``{"rows", "rows_per_s", "copy_floor_ratio", "peak_rss_mib", …}`` (with ``--citus``,
the same figures prefixed ``citus_``). Target: at least half the floor's rate with memory flat in N.
"""

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

from pgdb import bench_url, log, recreate_database  # bench/pgdb.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = (
    "nir,birth_name,usual_name,first_names,birth_date,sex,birth_place_code,address_complement,address_building,"
    "address_street,address_locality,postal_code,city,country,email,representative_nir"
)
LAST_NAMES = ["MARTIN", "PETIT", "LEROY", "MOREAU", "ROUX", "LEFEBVRE", "DUBOIS", "LAMBERT", "GIRARD", "MERCIER"]
FIRST_NAMES = ["Alice", "Bernard", "Camille", "Denise", "Étienne", "Fanny", "Gérard", "Hélène", "Inès", "Jules"]
STREETS = ["rue des Lilas", "avenue Jean Jaurès", "place Bellecour", "boulevard Voltaire", "chemin des Vignes"]
CITIES = [("69003", "LYON"), ("75011", "PARIS"), ("13001", "MARSEILLE"), ("31000", "TOULOUSE"), ("59000", "LILLE")]
DEPARTMENTS = [f"{d:02d}" for d in range(1, 96) if d != 20]
ASCII = {name: unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower() for name in FIRST_NAMES}


def rss_mib() -> float:
    """Peak resident memory of this process or of any loading worker (its children), in MiB.

    This process's own peak is read from /proc (VmHWM), which a new program starts afresh: ``ru_maxrss``
    survives exec on Linux, so the Citus side, started by the run that has just built the floor's rows, would
    report the floor's memory as its own.
    """
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        pass
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def nir_for(n: int) -> tuple[str, int, int]:
    """The n-th NIR (unique for n < 94 x 999 x 999 per sex), its birth year and month (I1 key computed)."""
    sex = 1 + n % 2
    year, month = 40 + (n // 2) % 60, 1 + (n // 120) % 12
    order, commune = 1 + n % 999, 1 + (n // 999) % 999
    department = DEPARTMENTS[(n // 998_001) % len(DEPARTMENTS)]
    body = f"{sex}{year:02d}{month:02d}{department}{commune:03d}{order:03d}"
    return f"{body}{97 - int(body) % 97:02d}", 1900 + year, month


def write_roster(path: Path, rows: int) -> None:
    """Stream ``rows`` valid roster lines to ``path`` (constant memory)."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER + "\n")
        previous_adult = ""
        for n in range(rows):
            nir, year, month = nir_for(n)
            last, first = LAST_NAMES[n % 10], FIRST_NAMES[(n // 10) % 10]
            postal_code, city = CITIES[n % 5]
            street = f"{1 + n % 120} {STREETS[n % 5]}"
            email = f"{ASCII[first]}.{last.lower()}.{n}@courriel.example" if n % 5 == 0 else ""
            representative = ""
            if n % 20 == 7 and previous_adult:  # a minor (born 2015) whose representative is the row before
                year, representative = 2015, previous_adult
                nir = f"{nir[0]}15{nir[3:13]}"
                nir = f"{nir}{97 - int(nir) % 97:02d}"
            else:
                previous_adult = nir
            if n % 50 == 3:
                street = postal_code = city = ""
            handle.write(
                f"{nir},{last},,{first},{year}-{month:02d}-15,{'M' if nir[0] == '1' else 'F'},75056,,,"
                f"{street},,{postal_code},{city},FR,{email},{representative}\n"
            )


def floor(path: Path, limit: int) -> tuple[int, float]:
    """(people, seconds): the written tables emptied, then the first ``limit`` people's rows COPied, pre-built."""
    from django.db import connection, transaction
    from django.utils import timezone

    from access_control.models import TrailEntry
    from access_control.trail import purge_allowed
    from notifications.models import Notice
    from records.enrolment_copy import build_rows, chunk_writer, write_rows
    from records.models import NirIndex, Profile
    from records.roster import RosterRow, read_roster

    # The NIR index too: on Citus its key to the profile is dropped, so no TRUNCATE … CASCADE reaches it.
    tables = [Profile, NirIndex, TrailEntry, Notice, Notice.trail_entries.through]
    names = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in tables)
    with transaction.atomic(), purge_allowed(), connection.cursor() as cursor:  # the trail is append-only (T2)
        cursor.execute(f"TRUNCATE {names} CASCADE")
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {names}")
    writer = chunk_writer()
    with open(path, "rb") as handle:
        people = [row for _n, row in zip(range(limit), read_roster(handle), strict=False) if isinstance(row, RosterRow)]
    profile_ids = dict(zip((row.nir for row in people), writer.allocate(Profile, len(people)), strict=True))
    accepted = [(row, profile_ids.get(row.representative_nir) if row.representative_nir else None) for row in people]
    built = build_rows(accepted, profile_ids, actor=None, writer=writer, now=timezone.now())
    log(
        f"  floor: {len(people)} people, {len(built.profiles) + len(built.entries) + len(built.notices) + len(built.links) + len(built.nir_index)} rows built"
    )
    started = time.perf_counter()
    with transaction.atomic():
        write_rows(built, writer)
    elapsed = time.perf_counter() - started
    if Profile.objects.count() != len(people):
        raise SystemExit("floor: the rows did not all go in")
    return len(people), elapsed


def measure(args, base_url: str, *, sharded: bool) -> dict:
    """Ours then the floor on one server (plain PostgreSQL, or a Citus coordinator): the figures."""
    url = bench_url(base_url, args.database)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("CARNET_MASTER_KEY", "bench:" + "QkVOQ0hCRU5DSEJFTkNIQkVOQ0hCRU5DSEJFTkNIMTI=")
    import django

    django.setup()
    from django.core.management import call_command

    from records import enrolment

    messages, handed = multiprocessing.Value("q", 0), multiprocessing.Value("q", 0)  # shared with the workers

    def count(args, retry):
        with messages.get_lock():
            messages.value += 1
            handed.value += len(args[0])

    enrolment.enqueue_enrolment_notices.apply_async = count  # forked workers inherit the counter

    side = "citus" if sharded else "pg"
    log(f"[{side}] creating {args.database} and migrating…")
    if sharded:
        from citusdb import recreate_citus_database

        recreate_citus_database(base_url, args.database)
    else:
        recreate_database(base_url, args.database)
    call_command("migrate", verbosity=0, skip_checks=True)
    if sharded:
        call_command("citus_distribute", shard_count=args.shards, verbosity=0)
    from django.db import connections

    connections.close_all()
    log(f"  RSS after set-up: {rss_mib():.0f} MiB")
    rows = args.rows

    with tempfile.TemporaryDirectory(prefix="carnet-enrolment-") as tmp:
        path = Path(tmp) / "roster.csv"
        started = time.perf_counter()
        write_roster(path, rows)
        log(f"Roster of {rows} rows written in {time.perf_counter() - started:.1f} s ({path.stat().st_size >> 20} MiB)")

        load_before = os.getloadavg()[0]
        cpu_before = os.times()
        started = time.perf_counter()
        out = open(os.devnull, "w")  # noqa: SIM115
        call_command(
            "enroll_patients", str(path), "--no-progress", "--workers", str(args.workers), stdout=out, stderr=out
        )
        ours_s = time.perf_counter() - started
        cpu = os.times()
        peak_rss = rss_mib()  # before the floor builds its rows in memory
        cpu_s = (cpu.user + cpu.system + cpu.children_user + cpu.children_system) - (
            cpu_before.user + cpu_before.system + cpu_before.children_user + cpu_before.children_system
        )
        rate = rows / ours_s
        log(
            f"[{side}] ours: enroll_patients --workers {args.workers}: {ours_s:.2f} s, {rate:,.0f} rows/s, "
            f"{cpu_s / rows * 1e6:.0f} µs of client CPU a row; load average {load_before:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after; peak RSS {peak_rss:.1f} MiB"
        )

        from access_control.models import TrailEntry
        from access_control.trail import verify_chain
        from notifications.models import Notice
        from records.models import Profile

        profiles, notices = Profile.objects.count(), Notice.objects.count()
        minors = Profile.objects.filter(legal_representative_id__isnull=False).count()
        entries = TrailEntry.objects.count()
        sample = list(Profile.objects.order_by("?").values_list("pk", flat=True)[:200])
        broken = [pk for pk in sample if verify_chain(pk)]
        log(
            f"written: {profiles} profiles ({minors} minors with their representative), {entries} trail entries, "
            f"{notices} notices ({Notice.objects.filter(status='undeliverable').count()} undeliverable); "
            f"{handed.value} notice ids handed over in {messages.value} messages; "
            f"{len(sample) - len(broken)}/{len(sample)} sampled chains verify"
        )
        pending = Notice.objects.filter(status="pending").count()
        ok = (
            profiles == rows and notices == rows and entries == rows + minors and handed.value == pending and not broken
        )
        if not ok:
            log("MISMATCH: the enrolment did not write what it should have.")

        people, floor_s = floor(path, min(rows, args.floor_rows))
        floor_rate = people / floor_s
        log(f"[{side}] floor: COPY of {people} people's pre-built rows: {floor_s:.2f} s, {floor_rate:,.0f} people/s")
    return {
        "rows": rows,
        "rows_per_s": round(rate),
        "copy_floor_ratio": round(rate / floor_rate, 4),
        "peak_rss_mib": round(peak_rss, 1),
        "copy_floor_rows_per_s": round(floor_rate),
        "workers": args.workers,
        "ok": ok,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100 000 rows")
    parser.add_argument("--workers", type=int, default=2, help="enroll_patients --workers")
    parser.add_argument("--floor-rows", type=int, default=100_000, help="people in the floor's COPY (all in memory)")
    parser.add_argument("--database", default="carnet_bench_enrolment")
    parser.add_argument("--citus", action="store_true", help="then the same on the Citus cluster of --citus-url")
    parser.add_argument(
        "--citus-url", default=os.environ.get("CITUS_URL") or "postgres://postgres@127.0.0.1:5433/carnet_citus"
    )
    parser.add_argument("--citus-workers", type=int, default=None, help="loaders on Citus (default: --workers)")
    parser.add_argument("--shards", type=int, default=32, help="shards a table on Citus")
    parser.add_argument("--side", choices=("pg", "citus"), default="pg", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick and args.rows == 1_000_000:
        args.rows = 100_000
    if args.side == "citus":
        result = measure(args, args.citus_url, sharded=True)
        print(json.dumps(result))
        return 0 if result["ok"] else 1
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url:
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server (the bench creates its own database).")
    result = measure(args, base_url, sharded=False)
    if args.citus:  # Django binds one database per process: the Citus side runs in its own
        command = [sys.executable, __file__, "--side", "citus", "--rows", str(args.rows), "--citus-url", args.citus_url]
        command += ["--workers", str(args.citus_workers or args.workers), "--floor-rows", str(args.floor_rows)]
        command += ["--database", args.database, "--shards", str(args.shards)]
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)  # noqa: S603
        citus = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {"ok": False}
        result.update({f"citus_{key}": value for key, value in citus.items() if key != "rows"})
    ok = result.pop("ok") and result.pop("citus_ok", True)
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
