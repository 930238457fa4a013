"""Benchmark: the roster enrolment (L1) against the floor of a plain PostgreSQL COPY of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/enrolment.py [--rows N | --quick]

Creates its own database (``carnet_bench_enrolment`` next to the one DATABASE_URL names) and migrates it,
writes a valid roster of ``--rows`` people to a temporary file (streamed: valid NIR keys, 1 in 5 with an
e-mail, 1 in 20 a minor whose legal representative is the row before, 1 in 50 without a postal address), then
in one run:

* **floor**: psycopg ``COPY … FROM STDIN (FORMAT csv, HEADER)`` of the file's bytes into a bare table with the
  roster's columns (typed, no index, no constraint), committed;
* **ours**: ``manage.py enroll_patients FILE`` (``--workers``, default 2): validation of every row, then per
  person the profile, its trail chain (hash-chained entries), the pre-opening notice with its sealed code,
  the link between them, in 5 000-row transactions, and the after-commit hand-off of the notice ids.

The broker hand-off is counted, not sent (``apply_async`` replaced by a counter: no broker needed; it is one
message per 1 000 notices). After the run it checks the counts and a sample of trail chains. Details go to
stderr; the last stdout line is ``{"rows", "rows_per_s", "copy_floor_ratio", "peak_rss_mib", …}``.
Target: at least half the floor's rate with memory flat in N.
"""

import argparse
import json
import multiprocessing
import os
import resource
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
FLOOR_TABLE = """
    CREATE TABLE bench_roster_floor (
        nir varchar(15), birth_name varchar(100), usual_name varchar(100), first_names varchar(200),
        birth_date date, sex varchar(1), birth_place_code varchar(5), address_complement varchar(38),
        address_building varchar(38), address_street varchar(38), address_locality varchar(38),
        postal_code varchar(10), city varchar(32), country varchar(2), email varchar(254),
        representative_nir varchar(15)
    )
"""
LAST_NAMES = ["MARTIN", "PETIT", "LEROY", "MOREAU", "ROUX", "LEFEBVRE", "DUBOIS", "LAMBERT", "GIRARD", "MERCIER"]
FIRST_NAMES = ["Alice", "Bernard", "Camille", "Denise", "Étienne", "Fanny", "Gérard", "Hélène", "Inès", "Jules"]
STREETS = ["rue des Lilas", "avenue Jean Jaurès", "place Bellecour", "boulevard Voltaire", "chemin des Vignes"]
CITIES = [("69003", "LYON"), ("75011", "PARIS"), ("13001", "MARSEILLE"), ("31000", "TOULOUSE"), ("59000", "LILLE")]
DEPARTMENTS = [f"{d:02d}" for d in range(1, 96) if d != 20]
ASCII = {name: unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower() for name in FIRST_NAMES}


def rss_mib() -> float:
    """Peak resident memory of this process or of any loading worker (its children), in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
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


def copy_floor(url: str, path: Path) -> float:
    """Seconds to COPY the file's bytes into a bare table, committed."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_roster_floor")
        conn.execute(FLOOR_TABLE)
        conn.commit()
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY bench_roster_floor FROM STDIN (FORMAT csv, HEADER true)") as copy,
            open(path, "rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_roster_floor")
        conn.commit()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100 000 rows")
    parser.add_argument("--workers", type=int, default=2, help="enroll_patients --workers")
    parser.add_argument("--database", default="carnet_bench_enrolment")
    args = parser.parse_args()
    rows = 100_000 if args.quick and args.rows == 1_000_000 else args.rows
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url:
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server (the bench creates its own database).")
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

    log(f"Creating {args.database} and migrating…")
    recreate_database(base_url, args.database)
    call_command("migrate", verbosity=0, skip_checks=True)
    from django.db import connections

    connections.close_all()
    log(f"  RSS after set-up: {rss_mib():.0f} MiB")

    with tempfile.TemporaryDirectory(prefix="carnet-enrolment-") as tmp:
        path = Path(tmp) / "roster.csv"
        started = time.perf_counter()
        write_roster(path, rows)
        log(f"Roster of {rows} rows written in {time.perf_counter() - started:.1f} s ({path.stat().st_size >> 20} MiB)")

        floor_s = copy_floor(url, path)
        floor_rate = rows / floor_s
        log(f"floor: COPY of the same rows into a bare table: {floor_s:.2f} s, {floor_rate:,.0f} rows/s")

        load_before = os.getloadavg()[0]
        cpu_before = os.times()
        started = time.perf_counter()
        out = open(os.devnull, "w")  # noqa: SIM115
        call_command(
            "enroll_patients", str(path), "--no-progress", "--workers", str(args.workers), stdout=out, stderr=out
        )
        ours_s = time.perf_counter() - started
        cpu = os.times()
        cpu_s = (cpu.user + cpu.system + cpu.children_user + cpu.children_system) - (
            cpu_before.user + cpu_before.system + cpu_before.children_user + cpu_before.children_system
        )
        rate = rows / ours_s
        log(
            f"ours: enroll_patients --workers {args.workers}: {ours_s:.2f} s, {rate:,.0f} rows/s, "
            f"{cpu_s / rows * 1e6:.0f} µs of client CPU a row; load average {load_before:.1f} before, "
            f"{os.getloadavg()[0]:.1f} after"
        )

    from access_control.models import TrailEntry
    from access_control.trail import verify_chain
    from notifications.models import Notice
    from records.models import Profile

    profiles, notices = Profile.objects.count(), Notice.objects.count()
    minors = Profile.objects.filter(legal_representative__isnull=False).count()
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
    ok = profiles == rows and notices == rows and entries == rows + minors and handed.value == pending and not broken
    if not ok:
        log("MISMATCH: the enrolment did not write what it should have.")
    result = {
        "rows": rows,
        "rows_per_s": round(rate),
        "copy_floor_ratio": round(rate / floor_rate, 4),
        "peak_rss_mib": round(rss_mib(), 1),
        "copy_floor_rows_per_s": round(floor_rate),
        "workers": args.workers,
    }
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
