"""The product as production runs it: gunicorn (gunicorn.conf.py) with CARNET_DEBUG=0, static files collected.

Each server here is the venv's ``gunicorn config.wsgi`` on a free loopback port, on this test database, with
the production settings (a strong secret key, a master key, ALLOWED_HOSTS, the manifest static storage). Only
SECURE_SSL_REDIRECT is off: the loopback has no TLS proxy in front. Secure cookies and HSTS stay on.
"""

import gzip
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.notify_fixtures import free_port, redis_url
from tests.notify_fixtures import test_database_url as database_url_for_subprocess

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NIR = "285037511402117"  # Alice's in the demo cast; any NIR must stay out of the logs
BIRTH_DATE = "1985-03-12"
MASTER_KEY = "test1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # the tests' key (tests/conftest.py)
# Set by tests/environment.py for the in-process tests; production leaves them to their defaults.
TEST_ONLY_VARIABLES = {"SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS"}


def production_env(var_dir: Path, static_root: Path, **extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in TEST_ONLY_VARIABLES}
    env.update(
        CARNET_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        CARNET_MASTER_KEY=MASTER_KEY,
        ALLOWED_HOSTS="127.0.0.1",
        REDIS_URL=redis_url(),
        CARNET_VAR_DIR=str(var_dir),
        CARNET_STATIC_ROOT=str(static_root),
        CARNET_STATIC_MANIFEST="1",
        SECURE_SSL_REDIRECT="0",  # plain HTTP on the loopback; production has it on behind its TLS proxy
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    """``collectstatic`` with the production storage (hashed names, compressed copies), once for the module."""
    root = tmp_path_factory.mktemp("static")
    env = production_env(tmp_path_factory.mktemp("var"), root)  # collecting needs no database
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    assert (root / "staticfiles.json").exists()
    return root


class Gunicorn:
    """``gunicorn config.wsgi`` from the repository root (so gunicorn.conf.py applies), logs in files."""

    def __init__(self, env: dict, log_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.stdout_path, self.stderr_path = log_dir / "gunicorn.out", log_dir / "gunicorn.err"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "Gunicorn":
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(  # noqa: S603
                [str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "1"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited {self.process.returncode}: {self.logs()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"gunicorn did not answer within {timeout} s: {self.logs()}")

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(self.url + path, headers=headers or {})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  loopback only
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # our own session: gunicorn's master and workers
            self.process.wait(timeout=30)

    def logs(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")


@pytest.fixture
def start_gunicorn(transactional_db, static_root, tmp_path):
    """``start_gunicorn(**env)`` → a running production server on this test database; stopped at teardown."""
    servers = []

    def start(**extra: str) -> Gunicorn:
        log_dir = tmp_path / f"server{len(servers)}"
        log_dir.mkdir()
        env = production_env(tmp_path / "var", static_root, DATABASE_URL=database_url_for_subprocess(), **extra)
        server = Gunicorn(env, log_dir)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.mark.browser
def test_portal_stylesheet_and_api_docs_load_under_gunicorn_in_production(start_gunicorn, browser):
    server = start_gunicorn()
    context = browser.new_context(base_url=server.url, locale="fr-FR")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        static_responses = []
        tab.on("response", lambda response: static_responses.append(response) if "/static/" in response.url else None)
        assert tab.goto("/connexion/").status == 200
        stylesheet = next(r for r in static_responses if "/static/css/carnet." in r.url)
        assert stylesheet.status == 200
        assert stylesheet.headers["content-type"].startswith("text/css")
        assert stylesheet.url.rsplit("/", 1)[1].count(".") == 2  # carnet.<hash>.css: the manifest's name
        assert "immutable" in stylesheet.headers.get("cache-control", "")  # hashed: cached for good
        background = tab.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(246, 246, 246)"  # carnet.css: body { background: #f6f6f6 }

        static_responses.clear()
        assert tab.goto("/api/docs/").status == 200
        tab.wait_for_selector("#swagger-ui .information-container", state="attached")  # drawn by Swagger UI's JS
        scripts = [r for r in static_responses if r.url.endswith(".js")]
        assert scripts and all(r.status == 200 for r in scripts)
        assert any("swagger-ui-bundle" in r.url for r in scripts)
        assert tab.evaluate("typeof window.SwaggerUIBundle") == "function"
    finally:
        context.close()


def test_static_files_are_served_compressed_under_gunicorn(start_gunicorn, static_root):
    server = start_gunicorn()
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    status, headers, body = server.get("/static/" + manifest["css/carnet.css"], {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert b"#f6f6f6" in gzip.decompress(body)
    assert server.get("/static/css/no-such-file.css")[0] == 404


def test_readiness_answers_under_gunicorn_in_production(start_gunicorn):
    from records.heartbeat import record_heartbeat

    server = start_gunicorn()
    record_heartbeat()  # a worker answered just now (committed: the database is transactional here)
    status, headers, body = server.get("/readyz")
    assert status == 200, (body, server.logs())
    assert json.loads(body)["checks"] == {
        "database": "ok",
        "cache": "ok",
        "broker": "ok",
        "documents": "ok",
        "master_key": "ok",
        "worker": "ok",
    }
    assert "no-cache" in headers["Cache-Control"]


def test_the_access_log_carries_no_query_string(start_gunicorn):
    server = start_gunicorn()
    query = f"identifier=urn:oid:1.2.250.1.213.1.4.8|{NIR}&birthdate={BIRTH_DATE}"
    server.get(f"/fhir/Patient?{query}", {"Accept": "application/fhir+json"})
    server.stop()
    logs = server.logs()
    assert '"GET /fhir/Patient HTTP/1.1" 401' in logs  # the request is logged, by its path
    assert NIR not in logs and BIRTH_DATE not in logs and "identifier" not in logs


def test_json_logs_are_one_object_a_line_for_gunicorn_and_django(start_gunicorn):
    server = start_gunicorn(CARNET_LOG_FORMAT="json")
    assert server.get("/healthz")[0] == 200
    assert server.get(f"/no-such-page?nir={NIR}")[0] == 404
    server.stop()
    records = []
    for line in server.logs().splitlines():
        if line.strip():
            records.append(json.loads(line))  # every line is one JSON object
    names = {record["name"] for record in records}
    assert {"gunicorn.access", "gunicorn.error", "django.request"} <= names
    access = [record["message"] for record in records if record["name"] == "gunicorn.access"]
    assert any('"GET /healthz HTTP/1.1" 200' in message for message in access)
    assert NIR not in server.logs()


def test_the_wsgi_application_freezes_what_start_up_built(tmp_path, static_root):
    """config.wsgi puts start-up's objects, the URL patterns and views included, out of the collector's reach."""
    env = production_env(tmp_path / "var", static_root, DATABASE_URL=database_url_for_subprocess())
    script = (
        "import gc, sys, config.wsgi; "
        "print(gc.get_freeze_count(), 'practitioners.api' in sys.modules, 'fhir_server.views' in sys.modules)"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    frozen, rest_views, fhir_views = result.stdout.split()
    assert int(frozen) > 100_000  # Django, the apps and their views: hundreds of thousands of objects
    assert rest_views == fhir_views == "True"
