"""Benchmark: postal letters rendered with WeasyPrint (N4), and e-mail notices delivered by a real worker.

1. Renders ``--letters`` letters (default 2000) for synthetic patients in this process, the way the letter
   channel does: stylesheet parsed once, one shared FontConfiguration (``notifications.rendering``). Records
   the time per letter and the resident memory along the way (bounded memory: the RSS after the first tenth
   and at the end are both printed).
2. Naive baseline, in the same run: ``--naive`` letters (default 20), each in a fresh ``python -c`` process
   that imports Django and WeasyPrint, parses the stylesheet and builds fonts for that one letter.
3. Unless ``--emails 0``: ``--emails`` consultation notices (default 300) delivered by e-mail through a real
   ``celery -A config worker`` (2 processes) on Redis (REDIS_URL, else redis://127.0.0.1:6379/5) to an
   aiosmtpd server on loopback, on a throw-away SQLite database; reports notices/s from commit to the last
   message received.

The last line printed is one JSON object:
``{"letters": N, "ms_per_letter": …, "letters_per_s": …, "naive_speedup": …, "peak_rss_mib": …, …}``.
Target: ≤ 50 ms per letter per process (≥ 20 letters/s/core) with bounded memory (perf anchors: ~43 ms).
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MASTER_KEY = "bench:" + "QkVOQ0hCRU5DSEJFTkNIQkVOQ0hCRU5DSEJFTkNIQkU="
SURNAMES = ["Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent"]
FIRST = ["Jean", "Marie", "Pierre", "Nathalie", "Michel", "Isabelle", "André", "Sylvie", "Philippe", "Catherine"]
STREETS = ["rue de la République", "avenue Jean Jaurès", "boulevard Victor Hugo", "place de la Mairie"]
CITIES = [("69007", "Lyon"), ("13005", "Marseille"), ("31000", "Toulouse"), ("59000", "Lille"), ("44000", "Nantes")]
PRACTITIONERS = [("Dr David Lambert", "Médecin"), ("Emma Girard", "Pharmacien"), ("Dr Claire Dubois", "Médecin")]


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def synthetic_letter(n: int):
    """(message, address lines) for synthetic patient ``n``: a consultation notice with 1-3 accesses."""
    from datetime import timedelta
    from types import SimpleNamespace

    from django.utils import timezone, translation

    from notifications.address import address_lines
    from notifications.content import Access, Message, format_day, format_when, write_consultation
    from records.models import Profile

    postal_code, city = CITIES[n % len(CITIES)]
    profile = Profile(
        birth_name=SURNAMES[n % len(SURNAMES)],
        first_names=FIRST[(n // 10) % len(FIRST)],
        sex=Profile.Sex.FEMALE if n % 2 else Profile.Sex.MALE,
        address_building="Résidence Les Tilleuls" if n % 3 == 0 else "",
        address_street=f"{1 + n % 120} {STREETS[n % len(STREETS)]}",
        postal_code=postal_code,
        city=city,
        state=Profile.State.OPEN,
    )
    now = timezone.now()
    with translation.override("fr"):
        message = Message(
            kind="consultation",
            language="fr",
            reference=f"C{now:%Y%m%d}-{n:08d}",
            date=format_day(now),
            subject="",
            greeting="Madame," if n % 2 else "Monsieur,",
            recipient_name=profile.display_name,
            signature="L'équipe Carnet — Assurance Maladie",
            footer="Ce message ne contient aucune information médicale.",
        )
        write_consultation(SimpleNamespace(profile=profile), message)
        for k in range(1 + n % 3):
            who, profession = PRACTITIONERS[(n + k) % len(PRACTITIONERS)]
            at = now - timedelta(hours=3 - k)
            message.accesses.append(Access(who, profession, at, format_when(at), "Normal", False))
    return message, address_lines(profile)


NAIVE_SNIPPET = """
import os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
sys.path.insert(0, {bench!r})
from letters import synthetic_letter
from notifications.rendering import render_letter
message, address = synthetic_letter({n})
assert render_letter(message, address, reuse=False).pdf.startswith(b"%PDF")
"""


def render_ours(letters: list) -> tuple[float, float, int]:
    """Seconds (wall, CPU) and pages for ``letters`` rendered one by one, as the letter channel renders each notice."""
    from notifications.rendering import render_letter

    pages = 0
    start, cpu = time.perf_counter(), time.process_time()
    for message, address in letters:
        pages += render_letter(message, address).page_count
    return time.perf_counter() - start, time.process_time() - cpu, pages


def render_floor(letters: list) -> tuple[float, float, int]:
    """The floor: the same letters as one multi-page WeasyPrint document (one parse, one layout, one PDF).

    Each letter's body goes into a positioned section that starts a page, so the absolute blocks (sender, window,
    reference) sit where they do in a letter of its own; only the "page n / N" footer counts the whole document.
    Times templating + layout + ``write_pdf``, like ``render_ours``. Seconds (wall, CPU) and pages.
    """
    import re

    from django.conf import settings
    from weasyprint import HTML

    from notifications.rendering import font_configuration, letter_html, stylesheet

    start, cpu = time.perf_counter(), time.process_time()
    bodies, head = [], ""
    for message, address in letters:
        html = letter_html(message, address)
        head = head or html.split("<body>", 1)[0]
        body = re.search(r"<body>(.*)</body>", html, re.S).group(1)
        bodies.append(f'<section style="position: relative; break-before: page">{body}</section>')
    document = HTML(string=f"{head}<body>{''.join(bodies)}</body></html>", base_url=str(settings.BASE_DIR))
    rendered = document.render(stylesheets=[stylesheet()], font_config=font_configuration())
    pdf = rendered.write_pdf()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert pdf.startswith(b"%PDF")
    return elapsed, cpu, len(rendered.pages)


def bench_render(count: int, floor_letters: int) -> dict:
    """Ours and the floor on the same letters, alternated chunk by chunk so that both see the same load.

    In chunks of ``floor_letters`` letters, the floor renders the chunk as one document and ours renders the same
    letters one by one; which goes first flips every chunk. The ratios compare the sums: wall-clock time, and this
    process's CPU time, which the other processes of a shared box disturb far less (both are single-threaded).
    """
    import statistics

    from notifications.rendering import render_letter

    render_letter(*synthetic_letter(0))  # warm-up: the stylesheet is parsed and the fonts loaded here
    totals = {"ours": [0.0, 0.0, 0], "floor": [0.0, 0.0, 0]}  # wall seconds, CPU seconds, pages
    rss_early = None
    chunk_ratios = []
    for index, first in enumerate(range(1, count + 1, floor_letters)):
        letters = [synthetic_letter(n) for n in range(first, min(first + floor_letters, count + 1))]
        runs = [("floor", render_floor), ("ours", render_ours)]
        measured = {name: run(letters) for name, run in (runs if index % 2 == 0 else runs[::-1])}
        for name, values in measured.items():
            totals[name] = [total + value for total, value in zip(totals[name], values, strict=True)]
        per_page = {name: cpu / pages for name, (_wall, cpu, pages) in measured.items()}
        chunk_ratios.append(per_page["ours"] / per_page["floor"])
        if rss_early is None and first + floor_letters > max(1, count // 10):
            rss_early = rss_mib()
    (ours_wall, ours_cpu, pages), (floor_wall, floor_cpu, floor_pages) = totals["ours"], totals["floor"]
    return {
        "letters": count,
        "pages": pages,
        "ms_per_letter": round(ours_wall * 1000 / count, 2),
        "letters_per_s": round(count / ours_wall, 1),
        "rss_mib_after_first_tenth": round(rss_early or 0.0, 1),
        "rss_mib_at_end": round(rss_mib(), 1),
        "floor_letters": floor_letters,
        "floor_pages": floor_pages,
        "page_floor_ms": round(floor_wall * 1000 / floor_pages, 2),
        # ours per letter over the floor's per page (every synthetic letter is one page; see "pages")
        "page_floor_ratio": round((ours_wall / count) / (floor_wall / floor_pages), 3),
        "cpu_ms_per_letter": round(ours_cpu * 1000 / count, 2),
        "cpu_page_floor_ms": round(floor_cpu * 1000 / floor_pages, 2),
        "cpu_page_floor_ratio": round((ours_cpu / count) / (floor_cpu / floor_pages), 3),
        "cpu_chunk_ratio_min_median_max": [
            round(value, 3) for value in (min(chunk_ratios), statistics.median(chunk_ratios), max(chunk_ratios))
        ],
    }


def bench_naive(count: int, env: dict) -> float:
    """Milliseconds per letter when each letter is a fresh process with nothing reused."""
    start = time.perf_counter()
    for n in range(count):
        code = NAIVE_SNIPPET.format(root=str(ROOT), bench=str(ROOT / "bench"), n=n)
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    return (time.perf_counter() - start) * 1000 / count


class _Mailbox:
    def __init__(self):
        self.count = 0
        self.recipients: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.count += 1
            self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


def bench_emails(count: int, env: dict, profile: str | None = None) -> dict:
    """Notices/s through a real worker: commit ``count`` consultation notices, wait for ``count`` e-mails."""
    from aiosmtpd.controller import Controller
    from django.core.management import call_command
    from django.db import connection, transaction

    from access_control.trail import record_entry
    from config.celery import app
    from notifications.outbox import queue_notice
    from practitioners.models import Practitioner, Profession
    from records.models import Profile

    call_command("migrate", verbosity=0)
    mailbox = _Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    queue = f"carnet-bench-{uuid.uuid4().hex[:8]}"
    app.conf.task_default_queue = queue
    worker_env = {**env, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(port)}
    log = open(Path(env["CARNET_VAR_DIR"]) / "worker.log", "ab")  # noqa: SIM115
    worker_args = f"-A config worker -Q {queue} -n {queue}@%h --loglevel WARNING --without-gossip --without-mingle"
    command = [sys.executable, "-m", "celery", *worker_args.split(), "--concurrency", "2"]
    if profile:  # one process, profiled by pyinstrument (which writes its report when the worker stops)
        pyinstrument = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", profile, "--show-all"]
        command = [*pyinstrument, "-m", "celery", *worker_args.split(), "--pool", "solo"]
    worker = subprocess.Popen(
        command,
        cwd=ROOT, env=worker_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[f"{queue}@{os.uname().nodename}"], timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the Celery worker did not start; see worker.log")
        profession, _ = Profession.objects.get_or_create(
            code="10", defaults={"label_fr": "Médecin", "label_en": "Doctor", "is_doctor": True}
        )
        doctor = Practitioner.objects.create(
            rpps="10005173140", title="Dr", first_name="David", last_name="Lambert", profession=profession
        )
        profiles = Profile.objects.bulk_create(
            Profile(
                nir=f"{1_000_000_000_000 + n}",
                birth_name=SURNAMES[n % len(SURNAMES)],
                first_names=FIRST[n % len(FIRST)],
                birth_date="1970-01-01",
                sex=Profile.Sex.MALE,
                email=f"patient{n}@example.org",
                email_verified=True,
                preferred_channel=Profile.Channel.EMAIL,
                state=Profile.State.ACTIVE,
            )
            for n in range(count)
        )
        with transaction.atomic():
            for profile in profiles:
                entry = record_entry(profile=profile, action="record_opened", actor=doctor)
                queue_notice(profile, "consultation", practitioner=doctor, trail_entry=entry)
            start = time.perf_counter()  # the ids go to Redis when this block commits
        while mailbox.count < count:
            if time.perf_counter() - start > 600:
                raise SystemExit(f"only {mailbox.count}/{count} e-mails after 600 s; see worker.log")
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        time.sleep(1)  # anything sent twice would arrive now
        received = mailbox.count
        # Exactly once: every patient's address once (a duplicate and a loss would not show in the count alone).
        by_address = {address: mailbox.recipients.count(address) for address in {p.email for p in profiles}}
        doubled = sum(1 for times in by_address.values() if times > 1)
        missing = sum(1 for times in by_address.values() if times == 0)
        floor = email_floor(count, port, mailbox)
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(timeout=30)
        smtp.stop()
        import redis

        redis.Redis.from_url(app.conf.broker_url).delete(queue)
    ours = count / elapsed
    return {
        "emails": count,
        "email_notices_per_s": round(ours, 1),
        "email_floor_per_s": round(floor, 1),
        "email_ratio": round(ours / floor, 3),
        "emails_received": received,
        "emails_doubled": doubled,
        "emails_missing": missing,
        "email_database": connection.vendor,
    }


def email_floor(count: int, port: int, mailbox: "_Mailbox") -> float:
    """Messages/s of a plain loop sending the same e-mails, rendered beforehand, over one reused SMTP connection."""
    from django.core.mail import get_connection

    from notifications.channels.email import render_email
    from notifications.content import notices_for_delivery
    from notifications.models import Notice

    notices = notices_for_delivery().filter(kind=Notice.Kind.CONSULTATION).order_by("pk")[:count]
    messages = [render_email(notice) for notice in notices]
    assert len(messages) == count
    smtp = get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1", port=port)
    before = mailbox.count
    smtp.open()
    start = time.perf_counter()
    for message in messages:  # one call a message, as a loop over notices would
        smtp.send_messages([message])
    smtp.close()
    while mailbox.count < before + count:
        time.sleep(0.001)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--letters", type=int, default=2000)
    parser.add_argument("--naive", type=int, default=20)
    parser.add_argument("--emails", type=int, default=300)
    parser.add_argument("--emails-only", action="store_true", help="skip the letters (same as --letters 0 --naive 0)")
    parser.add_argument("--profile-worker", metavar="PATH", help="run the worker as one process under pyinstrument")
    parser.add_argument(
        "--floor-letters", type=int, default=200, help="letters in each of the floor's documents (one per chunk)"
    )
    parser.add_argument(
        "--database",
        default="carnet_bench_letters",
        help="the e-mail part's PostgreSQL database, recreated on DATABASE_URL's server (SQLite without one)",
    )
    args = parser.parse_args()
    if args.emails_only:
        args.letters = args.naive = 0

    workdir = Path(tempfile.mkdtemp(prefix="carnet-bench-"))
    database_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.path.insert(0, str(ROOT / "bench"))
        from pgdb import bench_url, recreate_database

        database_url = bench_url(os.environ["DATABASE_URL"], args.database)
        if args.emails:
            recreate_database(os.environ["DATABASE_URL"], args.database)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "CARNET_VAR_DIR": str(workdir),
        "CARNET_MASTER_KEY": MASTER_KEY,
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/5",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CARNET_NOTICE_CHANNEL_OVERRIDE", None)
    os.environ.update(env)
    import logging

    import django

    django.setup()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line at INFO
    import ctypes.util

    if not ctypes.util.find_library("harfbuzz-subset"):
        print("warning: libharfbuzz-subset0 is missing: expect ~240 ms per letter (carnet.W010)", file=sys.stderr)

    result = {}
    if args.letters:
        result = bench_render(args.letters, min(args.letters, args.floor_letters))
        print(f"ours and the floor, alternated: {result}", file=sys.stderr)
    naive_ms = bench_naive(args.naive, env) if args.naive else None
    if naive_ms is not None:
        print(f"naive (fresh process per letter, {args.naive} letters): {naive_ms:.0f} ms/letter", file=sys.stderr)
        result["naive_ms_per_letter"] = round(naive_ms, 1)
        result["naive_speedup"] = round(naive_ms / result["ms_per_letter"], 1) if result else None
    # Peak of the rendering process (before the e-mail part, which migrates a database in this process).
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if args.emails:
        result.update(bench_emails(args.emails, env, args.profile_worker))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
