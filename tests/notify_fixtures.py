"""Fixtures of the notice pipeline's tests: the personas it needs, a real SMTP server, a real Celery worker.

The personas are built with ``objects.create`` (the records and access-control actions are written in
parallel); consultations are written the way ``access_control.api.open_record`` writes them: a trail entry
(``record_entry``) and ``queue_notice`` in one transaction.

``smtp_server`` is aiosmtpd on loopback (a free port). ``celery_worker`` starts ``celery -A config worker``
as a subprocess on Redis (REDIS_URL, else redis://127.0.0.1:6379/5) with DATABASE_URL pointing at the test
database, on a queue of its own so that parallel test sessions do not steal each other's messages; it fails
(never skips) when Redis or the worker is not there.
"""

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from django.db import connection, transaction

from access_control.models import AccessMode
from access_control.trail import record_entry
from notifications.outbox import queue_notice
from practitioners.models import Practitioner, Profession
from records.models import Document, DocumentType, Profile, User

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
SECRET_TITLE = "Compte rendu de coloscopie : polype sessile"


def nir_with_key(first13: str) -> str:
    """I1: key = 97 - (N mod 97)."""
    return f"{first13}{97 - int(first13) % 97:02d}"


def _profession(code: str, label_fr: str, label_en: str, is_doctor: bool) -> Profession:
    profession, _ = Profession.objects.get_or_create(
        code=code, defaults={"label_fr": label_fr, "label_en": label_en, "is_doctor": is_doctor}
    )
    return profession


def make_practitioner(rpps: str, first: str, last: str, *, code="10", email="", specialty="", title="Dr"):
    labels = {"10": ("Médecin", "Doctor", True), "21": ("Pharmacien", "Pharmacist", False)}[code]
    return Practitioner.objects.create(
        rpps=rpps,
        title=title,
        first_name=first,
        last_name=last,
        profession=_profession(code, *labels),
        specialty=specialty,
        email=email,
    )


@pytest.fixture
def claire(db):
    return make_practitioner(
        "10005173140", "Claire", "Dubois", email="claire.dubois@cabinet.example", specialty="médecine générale"
    )


@pytest.fixture
def david(db):
    return make_practitioner("10100534436", "David", "Lambert", specialty="cardiologie")


@pytest.fixture
def emma(db):
    return make_practitioner("10000000016", "Emma", "Girard", code="21", title="")


@pytest.fixture
def alice(db, claire):
    """Activated, verified e-mail, prefers e-mail; treating doctor Dr Claire Dubois."""
    user = User.objects.create_user(username="alice", password="not-used-here-1234", kind=User.Kind.PATIENT)
    return Profile.objects.create(
        nir=nir_with_key("2850575056123"),
        birth_name="Martin",
        first_names="Alice Marie",
        birth_date=date(1985, 5, 12),
        sex=Profile.Sex.FEMALE,
        address_street="4 rue de la Paix",
        postal_code="75002",
        city="Paris",
        email="alice.martin@example.org",
        email_verified=True,
        preferred_channel=Profile.Channel.EMAIL,
        state=Profile.State.ACTIVE,
        treating_doctor=claire,
        user=user,
    )


@pytest.fixture
def bernard(db):
    """Open, never activated, postal address only: every notice is a letter."""
    return Profile.objects.create(
        nir=nir_with_key("1540369123045"),
        birth_name="Petit",
        first_names="Bernard Louis",
        birth_date=date(1954, 3, 2),
        sex=Profile.Sex.MALE,
        address_building="Résidence Les Tilleuls",
        address_street="12 avenue Jean Jaurès",
        postal_code="69007",
        city="Lyon",
        state=Profile.State.OPEN,
    )


def secret_document(profile, author) -> Document:
    """A document whose title must never appear in a notice (N6)."""
    return Document.objects.create(
        profile=profile,
        # Transactional tests flush the seeded catalogue: bring the one type needed back if it is gone.
        document_type=DocumentType.objects.get_or_create(
            code="11490-0",
            defaults={
                "code_system": "LOINC",
                "label_fr": "Lettre de sortie",
                "label_en": "Discharge letter",
                "class_code": "10",
            },
        )[0],
        title=SECRET_TITLE,
        care_date=date(2026, 11, 2),
        author_kind=Document.AuthorKind.PRACTITIONER,
        author_practitioner=author,
        deposited_at="2026-11-02T10:00:00+01:00",
        size=10,
        content_type="application/pdf",
        sha256="0" * 64,
        storage_key=f"test/{uuid.uuid4().hex}",
        wrapped_key=b"\x00" * 41,
        master_key_id="test1",
    )


def consult(profile, practitioner, *, document=None, mode=AccessMode.NORMAL, kind="consultation"):
    """What opening a record does (T1 + N5): a trail entry and a notice, in one transaction."""
    with transaction.atomic():
        entry = record_entry(
            profile=profile,
            action="document_opened" if document is not None else "record_opened",
            actor=practitioner,
            document=document,
            mode=mode,
            justification="Patient inconscient aux urgences." if mode != AccessMode.NORMAL else "",
        )
        return queue_notice(profile, kind, practitioner=practitioner, trail_entry=entry)


def pdf_text(pdf: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


# --- A real SMTP server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """aiosmtpd handler keeping the messages it accepted. ``stall_mail`` holds MAIL FROM until released."""

    def __init__(self):
        self.messages = []
        self.lock = threading.Lock()
        self.stall_mail = False
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.stall_mail:
            import asyncio

            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 Try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 30.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} e-mails within {timeout} s, got {len(self.messages)}")


class SmtpServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.mailbox = Mailbox()
        self.controller = None

    def start(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.mailbox.release.set()
            self.controller.stop()
            self.controller = None


def text_of(message) -> tuple[str, str]:
    """(plain text, HTML) parts of a multipart e-mail."""
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return plain, html


@pytest.fixture
def smtp_server(settings):
    server = SmtpServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


# --- A real Celery worker -----------------------------------------------------------------------------


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def test_database_url() -> str:
    """A URL another process can open to reach the test database pytest-django created."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = db.get("USER") or ""
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        auth = f"{user}{password}@" if user else ""
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"
    name = str(db["NAME"])
    if connection.vendor != "sqlite" or "memory" in name or name == "":
        raise AssertionError(
            "The worker tests need a test database another process can open: PostgreSQL (DATABASE_URL) or "
            "a file-backed SQLite test database."
        )
    return f"sqlite:///{name}"


class Worker:
    """``celery -A config worker`` in its own process group, on a queue of its own."""

    def __init__(self, *, env: dict, queue: str, log_path: Path, concurrency: int = 2):
        self.env = env
        self.log_path = log_path
        self.queue = queue
        self.concurrency = concurrency
        self.process = None
        self.log = None

    def start(self, timeout: float = 60.0):
        self.log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                self.queue,
                "-n",
                f"{self.queue}@%h",
                "--concurrency",
                str(self.concurrency),
                "--pool",
                "prefork",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float):
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the Celery worker exited with {self.process.returncode}; see {self.log.name}")
            replies = app.control.ping(destination=[f"{self.queue}@{socket.gethostname()}"], timeout=0.5)
            if replies:
                return
        raise AssertionError(f"the Celery worker did not answer a ping within {timeout} s; see {self.log.name}")

    def kill(self):
        """SIGKILL the worker and its pool processes, as an OOM killer or a lost machine would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.log is not None:
            self.log.close()


def reset_broker_connections(app) -> None:
    """Forget this process's broker connections, so that the next publish uses ``app.conf.broker_url``."""
    from kombu import pools

    pools.reset()  # closes and forgets kombu's per-URL connection and producer pools
    app._after_fork()


def set_broker_url(app, url: str) -> None:
    app.conf.broker_url = url
    reset_broker_connections(app)


@pytest.fixture
def broker(settings):
    """Point this process's Celery app at Redis and a queue of its own; restore afterwards."""
    from config.celery import app

    url = redis_url()
    queue = f"carnet-test-{uuid.uuid4().hex[:10]}"
    saved = {key: app.conf.get(key) for key in ("broker_url", "broker_transport_options", "task_default_queue")}
    app.conf.update(
        broker_url=url,
        broker_transport_options={"visibility_timeout": 3600},
        task_default_queue=queue,
        broker_connection_timeout=2,
    )
    reset_broker_connections(app)
    import redis

    redis.Redis.from_url(url).ping()  # fails the test (never skips) when Redis is not there
    yield {"url": url, "queue": queue, "app": app}
    redis.Redis.from_url(url).delete(queue)
    app.conf.update(saved)
    reset_broker_connections(app)


def worker_env(broker, smtp_port: int, **extra) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": broker["url"],
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_TIMEOUT": "5",
        "CARNET_MASTER_KEY": "test1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
        "CARNET_NOTICE_RETRY_BASE_SECONDS": "1",
        "CARNET_NOTICE_RETRY_MAX_SECONDS": "2",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CARNET_NOTICE_CHANNEL_OVERRIDE", None)
    env.update({key: str(value) for key, value in extra.items()})
    return env


@pytest.fixture
def start_worker(broker, tmp_path, settings):
    """Start workers on the test's queue: ``start_worker(smtp_port, **env)``; all are stopped at teardown.

    The workers' VAR_DIR is the test's, so letters they store land in the document store this process reads.
    """
    workers = []
    var_dir = tmp_path / "var"
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(var_dir / "documents")},
        },
    }

    def start(smtp_port: int, **extra):
        env = worker_env(broker, smtp_port, CARNET_VAR_DIR=var_dir, **extra)
        worker = Worker(env=env, queue=broker["queue"], log_path=tmp_path / f"worker-{len(workers)}.log").start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
