"""Benchmark: a mixed load on the product as production runs it, with locust headless, at 10, 25 and 50 users.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python bench/load.py [--seconds 30] [--users 10,25,50] [--database carnet_bench_load]
    … --gunicorn-args "--worker-class sync"   # compare another web configuration (added after -c gunicorn.conf.py)

It recreates its own database on DATABASE_URL's server, migrates it, builds the personas, deposits 40 more
documents to Alice Martin's record and creates API tokens (practitioners Claire Dubois and David Lambert, patient
Alice Martin; several per account, as several practice programs would hold). Then it starts, on loopback:
gunicorn with ``gunicorn.conf.py`` and ``--workers 2`` as the Dockerfile and docker-compose.yml do, with the
production settings (CARNET_DEBUG=0, static files collected with the manifest; only SECURE_SSL_REDIRECT off, as in
tests/test_production_serving.py); a Celery worker (``--concurrency 2``) on REDIS_URL; an aiosmtpd server that
receives the notices. Each level runs for ``--seconds`` with locust's HTTP users, who think 0.5-2 s between calls:

* practitioners (3 in 5 users): find the patient (A11) and open the record (A1, traced and notified) — 2 in 10
  calls —, list the visible documents — 4 in 10 —, download one document — 3 in 10 —, deposit one — 1 in 10;
* patients (2 in 5): list their documents — 3 in 6 —, read their trail (T3) — 2 in 6 —, download one — 1 in 6.

Every answer other than the expected status is an error. The last stdout line is one JSON object: per level
requests/s, p50/p95/p99 in ms, errors, the server-side median (gunicorn's access log: the time inside the
worker, without the wait for a free worker), and ``ratio_at_50_over_peak``; the shares of each call are on
stderr (locust's table per level). Absolute latencies depend on the machine's load (``uptime`` is printed).
"""

import argparse
import csv
import json
import os
import random
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = "bench1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
STATE = Path(tempfile.gettempdir()) / "carnet-bench-load.json"
TOKENS_PER_ACCOUNT = 8

# --- The users (imported by locust from this file) ------------------------------------------------------------

if __name__ != "__main__":  # imported by locust (which patches the standard library with gevent on import)
    from locust import HttpUser, between, task

    def _state() -> dict:
        return json.loads(STATE.read_text())

    def _pdf() -> bytes:
        return _state()["pdf"].encode("latin-1")

    class Practitioner(HttpUser):
        """A practice program: finds and opens the record, lists, downloads, sometimes deposits."""

        weight = 3
        wait_time = between(0.5, 2)

        def on_start(self):
            state = _state()
            self.who = random.choice(state["practitioners"])
            self.client.headers["Authorization"] = f"Bearer {random.choice(self.who['tokens'])}"
            self.patient = state["patient"]
            self.handle = ""
            self.documents: list[int] = []
            self.consult()

        @task(2)
        def consult(self):
            found = self.client.post(
                "/api/v1/practitioner/patients/search/",
                json={"nir": self.patient["nir"], "birth_date": self.patient["birth_date"]},
                name="practitioner: find the patient",
            )
            if found.status_code != 200:
                return
            opened = self.client.post(
                f"/api/v1/practitioner/patients/{found.json()['handle']}/open/",
                json={"attests_care_team": True},
                name="practitioner: open the record",
            )
            if opened.status_code == 200:
                self.handle = opened.json()["handle"]

        @task(4)
        def list_documents(self):
            if not self.handle:
                return
            listing = self.client.get(
                f"/api/v1/practitioner/patients/{self.handle}/documents/?page_size=50", name="practitioner: list"
            )
            if listing.status_code == 200:
                self.documents = [row["id"] for row in listing.json()["results"]]

        @task(3)
        def download(self):
            if self.handle and self.documents:
                document = random.choice(self.documents)
                self.client.get(
                    f"/api/v1/practitioner/patients/{self.handle}/documents/{document}/content/",
                    name="practitioner: download a document",
                )

        @task(1)
        def deposit(self):
            if self.handle:
                self.client.post(
                    f"/api/v1/practitioner/patients/{self.handle}/documents/",
                    data={"document_type": "11502-2", "title": "Compte rendu de charge"},
                    files={"file": ("compte-rendu.pdf", _pdf(), "application/pdf")},
                    name="practitioner: deposit",
                )

    class Patient(HttpUser):
        """A patient's app: reads the documents and the trail."""

        weight = 2
        wait_time = between(0.5, 2)

        def on_start(self):
            state = _state()
            self.client.headers["Authorization"] = f"Bearer {random.choice(state['patient']['tokens'])}"
            self.base = f"/api/v1/patient/profiles/{state['patient']['id']}/"
            self.documents: list[int] = []

        @task(3)
        def list_documents(self):
            listing = self.client.get(f"{self.base}documents/", name="patient: list")
            if listing.status_code == 200:
                self.documents = [row["id"] for row in listing.json()["results"]]

        @task(2)
        def trail(self):
            self.client.get(f"{self.base}trail/", name="patient: trail")

        @task(1)
        def download(self):
            if self.documents:
                self.client.get(
                    f"{self.base}documents/{random.choice(self.documents)}/content/",
                    name="patient: download a document",
                )


# --- The driver -----------------------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(database_url: str, var_dir: Path, smtp_port: int) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS"}
    }
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_SECRET_KEY="bench-load-" + "y" * 60,
        CARNET_MASTER_KEY=MASTER_KEY,
        CARNET_DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1",
        CARNET_VAR_DIR=str(var_dir),
        CARNET_STATIC_ROOT=str(var_dir / "static"),
        CARNET_STATIC_MANIFEST="1",
        SECURE_SSL_REDIRECT="0",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    env.pop("CARNET_NOTICE_CHANNEL_OVERRIDE", None)
    return env


def _prepare(env: dict) -> dict:
    """Migrate, build the personas, 40 more documents for Alice, the tokens; in this process."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    from unittest import mock

    import django

    django.setup()
    from django.core.management import call_command
    from pgdb import deposit_follow_ups

    from access_control.tokens import do_create_token
    from records.personas import build_personas, minimal_pdf

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    with mock.patch("notifications.outbox.enqueue_delivery"):  # the sweep hands them over once the worker runs
        cast = build_personas()
        deposit_follow_ups(cast, 40)

    def tokens(user) -> list[str]:
        return [
            do_create_token(user, name=f"load {n}", scope="write", actor=user).secret for n in range(TOKENS_PER_ACCOUNT)
        ]

    return {
        "practitioners": [{"name": p.display_name, "tokens": tokens(p.user)} for p in (cast.claire, cast.david)],
        "patient": {
            "id": cast.alice.pk,
            "nir": cast.alice.nir,
            "birth_date": cast.alice.birth_date.isoformat(),
            "tokens": tokens(cast.alice.user),
        },
        "pdf": minimal_pdf("Compte rendu de charge", ["Texte du compte rendu."]).decode("latin-1"),
    }


def _aggregate(prefix: Path) -> dict:
    with open(f"{prefix}_stats.csv", encoding="utf-8") as stats:
        rows = list(csv.DictReader(stats))
    total = next(row for row in rows if row["Name"] == "Aggregated")
    requests = int(total["Request Count"])
    return {
        "requests_per_s": round(float(total["Requests/s"]), 1),
        "p50_ms": float(total["50%"]),
        "p95_ms": float(total["95%"]),
        "p99_ms": float(total["99%"]),
        "requests": requests,
        "errors": int(total["Failure Count"]),
        "shares": {
            row["Name"]: round(int(row["Request Count"]) / requests, 3) for row in rows if row["Name"] != "Aggregated"
        },
    }


def _server_times(access_log: Path, start: int) -> tuple[list[float], int]:
    """Durations in ms of the access log's lines from byte ``start`` (gunicorn.conf.py: ``… <ms>ms "<agent>"``)."""
    with open(access_log, "rb") as log:
        log.seek(start)
        text = log.read().decode("utf-8", "replace")
        end = log.tell()
    return [float(ms) for ms in re.findall(r" (\d+)ms \"", text)], end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--users", default="10,25,50")
    parser.add_argument("--database", default="carnet_bench_load")
    parser.add_argument("--gunicorn-args", default="", help="more gunicorn options, after gunicorn.conf.py's")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from aiosmtpd.controller import Controller
    from pgdb import bench_url, recreate_database

    given = os.environ.get("DATABASE_URL", "")
    database_url = bench_url(given, args.database)
    recreate_database(given, args.database)
    var_dir = Path(tempfile.mkdtemp(prefix="carnet-bench-load-"))

    class Mailbox:
        count = 0

        async def handle_DATA(self, server, session, envelope):  # noqa: N802  aiosmtpd's hook name
            Mailbox.count += 1
            return "250 OK"

    smtp_port = _free_port()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    env = _environment(database_url, var_dir, smtp_port)
    STATE.write_text(json.dumps(_prepare(env)))
    port = _free_port()
    access_log = var_dir / "access.log"
    queue = f"carnet-load-{os.getpid()}"
    venv = ROOT / ".venv" / "bin"
    servers = [
        subprocess.Popen(
            [str(venv / "gunicorn"), "config.wsgi", "-c", "gunicorn.conf.py", "--workers", "2"]
            + [f"--bind=127.0.0.1:{port}", f"--access-logfile={access_log}", *shlex.split(args.gunicorn_args)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(var_dir / "gunicorn.err", "wb"),  # noqa: SIM115  closed with the process
            start_new_session=True,
        ),
        subprocess.Popen(
            [str(venv / "celery"), "-A", "config", "worker", "-Q", f"celery,{queue}", "--concurrency", "2"]
            + ["--loglevel", "WARNING", "--without-gossip", "--without-mingle", "-n", f"{queue}@%h"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(var_dir / "worker.log", "wb"),  # noqa: SIM115  closed with the process
            start_new_session=True,
        ),
    ]
    base = f"http://127.0.0.1:{port}"
    levels = {}
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)  # noqa: S310  loopback only
                break
            except OSError:
                time.sleep(0.2)
        offset = 0
        for users in [int(n) for n in args.users.split(",")]:
            _log(f"--- {users} users, {args.seconds} s; load average {os.getloadavg()}")
            prefix = var_dir / f"locust-{users}"
            _times, offset = _server_times(access_log, offset) if access_log.exists() else ([], 0)
            subprocess.run(
                [str(venv / "locust"), "-f", str(Path(__file__)), "--headless", "--host", base]
                + [f"--users={users}", f"--spawn-rate={users}", f"--run-time={args.seconds}s"]
                + [f"--csv={prefix}", "--only-summary", "--loglevel=WARNING", "--stop-timeout=5"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}"},
                check=False,
            )
            level = _aggregate(prefix)
            times, offset = _server_times(access_log, offset)
            level["server_p50_ms"] = statistics.median(times) if times else None
            level["load_average"] = os.getloadavg()[0]
            levels[users] = level
            _log(json.dumps({users: level}))
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            server.wait(timeout=60)
        smtp.stop()
    peak = max(level["requests_per_s"] for level in levels.values())
    last = levels[max(levels)]
    result = {
        "levels": {str(users): {k: v for k, v in level.items() if k != "shares"} for users, level in levels.items()},
        "peak_requests_per_s": peak,
        "ratio_at_top_over_peak": round(last["requests_per_s"] / peak, 2) if peak else None,
        "errors": sum(level["errors"] for level in levels.values()),
        "emails_received": Mailbox.count,
        "gunicorn_args": args.gunicorn_args,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
