"""Benchmark: requests per second of the practitioner API's document list under gunicorn, against plain
Django JSON views, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python bench/api.py [--seconds 10] [--connections 8] [--workers 2]

It drops and recreates the database ``carnet_bench_api`` on the server DATABASE_URL names, migrates it, builds
the personas (``records.personas``) and deposits 42 more documents to Alice Martin's record (50 in all), creates
Dr Claire Dubois's API token (the treating doctor sees all 50) and opens the record through the API once. Then
it starts gunicorn (``--workers 2``, sync workers, DEBUG off, persistent connections, the cache on REDIS_URL
when given: the throttles use it) on 127.0.0.1 with this file's URLs — the product's plus two baselines — and
loads each endpoint in turn for ``--seconds`` with ``wrk`` (Debian package ``wrk``; a small Python client
otherwise) over ``--connections`` keep-alive connections:

* ``api``: ``GET /api/v1/practitioner/patients/<handle>/documents/?page_size=50`` — token authentication (one
  query), the two throttles (cache), the door's ``visible_documents`` (count + page: two queries), 50 documents
  serialised by the API's serializer;
* ``plain_orm``: a plain Django view, no authentication, returning the same 50 documents' fields from one
  ``Document.objects.filter(profile=…).values(…)`` query as ``JsonResponse``;
* ``plain_json``: a plain Django view returning a constant JSON body of the same size (no database);
* ``fhir``: ``GET /fhir/DocumentReference?patient=<id>&_count=50``, the FHIR door's listing of the same 50
  documents with the same token (the opening above is reused: no new trail entry).

Every answer is checked once before the load (status 200, 50 rows). The last stdout line is one JSON object with
the requests per second of each, ``api_over_plain_orm`` and ``fhir_over_plain_orm``. The throttle rates are raised
for the run. ``--profile N`` first times N calls of each in this process and prints a pyinstrument profile;
``--reuse`` keeps the last run's database; ``--database`` (or ``CARNET_BENCH_DATABASE``) names another database,
whose state file and gunicorn port are its own too, so two runs on one machine do not meet.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("CARNET_BENCH_DATABASE", "carnet_bench_api")
MASTER_KEY = "bench1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
SECRET_KEY = "bench-api-" + "x" * 50
TMP = Path(tempfile.gettempdir())


def _port(database: str) -> int:
    """The gunicorn port of this database's run: 8799 for the default, another fixed one per name otherwise."""
    if database == "carnet_bench_api":
        return 8799
    return 20000 + int.from_bytes(database.encode(), "big") % 10000


def _state(database: str) -> Path:
    suffix = "" if database == "carnet_bench_api" else f"-{database}"
    return TMP / f"carnet-bench-api{suffix}.json"


PORT = int(os.environ.get("CARNET_BENCH_PORT") or _port(DATABASE))
STATE = _state(DATABASE)


def _environment(database_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SECRET_KEY=SECRET_KEY,
        CARNET_MASTER_KEY=MASTER_KEY,
        CARNET_DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        CARNET_API_TOKEN_RATE="100000000/min",  # noqa: S106  a rate, not a password
        CARNET_API_ADDRESS_RATE="100000000/min",
        CARNET_VAR_DIR=str(TMP / "carnet-bench-api-var"),
        CARNET_NOTICE_CHANNEL_OVERRIDE="dev",
        LOG_LEVEL="WARNING",
        PYTHONPATH=f"{ROOT}:{ROOT / 'bench'}",
    )
    return env


# --- The app that gunicorn serves (this module, imported as ``api``) ---------------------------------------


def plain_orm(request):
    from django.http import JsonResponse

    from records.models import Document

    rows = list(
        Document.objects.filter(profile_id=int(request.GET["profile"]))
        .order_by("-deposited_at", "-pk")
        .values("id", "title", "document_type__code", "care_date", "deposited_at", "content_type", "size", "sha256")[
            :50
        ]
    )
    return JsonResponse({"count": len(rows), "results": rows})


PLAIN_BODY: dict = {}


def plain_json(request):
    from django.http import JsonResponse

    if not PLAIN_BODY:
        PLAIN_BODY.update(json.loads(STATE.read_text())["plain_body"])
    return JsonResponse(PLAIN_BODY)


def _urlpatterns():
    from django.urls import path

    from config.urls import urlpatterns as product

    return [path("bench/plain-orm/", plain_orm), path("bench/plain-json/", plain_json), *product]


if __name__ != "__main__":  # imported by gunicorn: serve the product's URLs and the two baselines
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    from plumbing.startup import freeze_start_up

    urlpatterns = _urlpatterns()
    settings.ROOT_URLCONF = __name__
    application = get_wsgi_application()
    freeze_start_up()  # as config/wsgi.py does, after this module's URL patterns are in place


# --- The driver -------------------------------------------------------------------------------------------


def _prepare(database_url: str) -> dict:
    """Create and fill the database in this process; returns what the load needs (token, handle, profile)."""
    import psycopg

    server = re.sub(r"/[^/]*$", "/postgres", database_url)
    with psycopg.connect(server.replace("postgres://", "postgresql://"), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    os.environ.update(_environment(database_url))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    from unittest import mock

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from pgdb import deposit_follow_ups

    from access_control import handles
    from access_control.tokens import do_create_token
    from records.personas import build_personas

    call_command("migrate", verbosity=0)
    with mock.patch("notifications.outbox.enqueue_delivery"):  # no broker: the rows are what matters here
        cast = build_personas()
        deposit_follow_ups(cast, 42)
        token = do_create_token(cast.claire.user, name="bench", scope="write", actor=cast.claire.user).secret
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        found = client.post(
            "/api/v1/practitioner/patients/search/",
            {"nir": cast.alice.nir, "birth_date": cast.alice.birth_date.isoformat()},
            content_type="application/json",
        ).json()["handle"]
        opened = client.post(
            f"/api/v1/practitioner/patients/{found}/open/",
            {"attests_care_team": True},
            content_type="application/json",
        ).json()["handle"]
        listing = client.get(f"/api/v1/practitioner/patients/{opened}/documents/?page_size=50").json()
    assert listing["count"] == 50, listing["count"]
    from django.db import connection

    # Statistics, as a live database has them: the plans the workers prepare must not depend on whether
    # autovacuum analysed the new tables before the load.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    fhir_patient = handles.stable_id(handles.practitioner_key(cast.claire), cast.alice.pk)
    return {
        "token": token,
        "handle": opened,
        "profile": cast.alice.pk,
        "plain_body": listing,
        "fhir_patient": fhir_patient,
    }


def _get(url: str, token: str = "") -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310  loopback only
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  loopback only
        return response.status, json.loads(response.read())


def _wrk(url: str, token: str, seconds: int, connections: int) -> float:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    print(output, file=sys.stderr)
    if "Non-2xx" in output:
        raise SystemExit(f"non-2xx answers from {url}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def _load_one(job: tuple[str, str, int]) -> int:
    import http.client

    path, token, seconds = job
    connection = http.client.HTTPConnection("127.0.0.1", PORT)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    done, stop = 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        done += 1
    return done


def _python_load(url: str, token: str, seconds: int, connections: int) -> float:
    """Fallback without wrk: ``connections`` processes, each with one keep-alive connection."""
    from multiprocessing import Pool

    path = url.split(str(PORT), 1)[1]
    with Pool(connections) as pool:
        return sum(pool.map(_load_one, [(path, token, seconds)] * connections)) / seconds


def _profile(state: dict, calls: int) -> None:
    """In this process (Django's test client, no HTTP): ms per call of each endpoint, and a pyinstrument profile."""
    from django.test import Client
    from pyinstrument import Profiler

    paths = {
        "api": (f"/api/v1/practitioner/patients/{state['handle']}/documents/?page_size=50", state["token"]),
        "plain_orm": (f"/bench/plain-orm/?profile={state['profile']}", ""),
        "fhir": (f"/fhir/DocumentReference?patient={state['fhir_patient']}&_count=50", state["token"]),
    }
    from django.conf import settings

    settings.ROOT_URLCONF = "api"  # this module, imported under its gunicorn name
    import importlib

    importlib.import_module("api")
    for name, (path, token) in paths.items():
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}") if token else Client()
        for _ in range(20):
            assert client.get(path).status_code == 200
        start = time.perf_counter()
        for _ in range(calls):
            client.get(path)
        print(f"{name}: {(time.perf_counter() - start) * 1000 / calls:.2f} ms per call in process", file=sys.stderr)
        profiler = Profiler(interval=0.0002)
        with profiler:
            for _ in range(calls):
                client.get(path)
        print(profiler.output_text(unicode=True, color=False), file=sys.stderr)


def _use_database(name: str) -> None:
    """Point the run at database ``name``: its state file, its port, and the gunicorn workers (environment)."""
    global DATABASE, PORT, STATE
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"Not a plain database name: {name!r}")
    DATABASE, STATE = name, _state(name)
    PORT = int(os.environ.get("CARNET_BENCH_PORT") or _port(name))
    os.environ["CARNET_BENCH_DATABASE"] = name  # the workers import this module: same state file
    os.environ["CARNET_BENCH_PORT"] = str(PORT)  # and the Python load's processes: same port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="keep the database and state of the last run")
    parser.add_argument("--profile", type=int, default=0, help="profile N in-process calls of each (pyinstrument)")
    parser.add_argument("--database", default=DATABASE, help="the database to (re)create (default carnet_bench_api)")
    args = parser.parse_args()
    _use_database(args.database)
    given = os.environ.get("DATABASE_URL", "")
    if not given.startswith("postgres"):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server (the database name is replaced).")
    database_url = re.sub(r"/[^/]*$", f"/{DATABASE}", given)

    if args.reuse and STATE.exists():
        os.environ.update(_environment(database_url), DJANGO_SETTINGS_MODULE="config.settings")
        import django

        django.setup()
        state = json.loads(STATE.read_text())
    else:
        state = _prepare(database_url)
        STATE.write_text(json.dumps(state, default=str))
    if args.profile:
        _profile(state, args.profile)
    env = _environment(database_url)
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "api:application",
            f"--workers={args.workers}",
            f"--bind=127.0.0.1:{PORT}",
            "--log-level=warning",
        ],
        cwd=ROOT / "bench",
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{PORT}"
    urls = {
        "api": (f"{base}/api/v1/practitioner/patients/{state['handle']}/documents/?page_size=50", state["token"]),
        "plain_orm": (f"{base}/bench/plain-orm/?profile={state['profile']}", ""),
        "plain_json": (f"{base}/bench/plain-json/", ""),
        # The FHIR door's listing of the same 50 documents (a Bundle of DocumentReference), same token.
        "fhir": (f"{base}/fhir/DocumentReference?patient={state['fhir_patient']}&_count=50", state["token"]),
    }
    try:
        for _ in range(100):
            try:
                _get(f"{base}/bench/plain-json/")
                break
            except OSError:
                time.sleep(0.1)
        for name, (url, token) in urls.items():
            status, body = _get(url, token)
            assert status == 200 and len(body.get("results", body.get("entry", []))) == 50, (name, status)
        load = _wrk if shutil.which("wrk") else _python_load
        results: dict = {}
        for name, (url, token) in urls.items():
            _get(url, token)  # warm the workers' connections
            if args.seconds:
                results[name] = round(load(url, token, args.seconds, args.connections), 1)
                print(f"{name}: {results[name]} req/s", file=sys.stderr)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    if not args.seconds:
        return
    results["api_over_plain_orm"] = round(results["api"] / results["plain_orm"], 2)
    results["fhir_over_plain_orm"] = round(results["fhir"] / results["plain_orm"], 2)
    results.update(workers=args.workers, connections=args.connections, seconds=args.seconds, rows=50)
    results["load"] = "wrk" if shutil.which("wrk") else "python"
    print(json.dumps(results))


if __name__ == "__main__":
    main()
