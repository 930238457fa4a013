"""A Redis server of the test's own, to stop and restart under the web tier and the worker (issue 14).

The fault tests never touch the shared Redis (port 6379 serves other sessions and CI): ``own_redis`` starts
``redis-server`` on a free loopback port, without persistence (a restart loses everything, like a Redis whose
data was not saved), and ``stop()`` / ``start()`` it on the same port.
"""

import shutil
import subprocess
import time
import uuid

import pytest
import redis

from tests.notify_fixtures import free_port


class RedisServer:
    """``redis-server`` in a subprocess on ``port``."""

    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("the fault tests need redis-server on PATH")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # a crash, not a clean shutdown
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_redis():
    server = RedisServer(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def own_broker(own_redis, settings):
    """This process's Celery app on ``own_redis`` (db 0), on a queue of its own; restored afterwards."""
    from config.celery import app
    from tests.notify_fixtures import set_broker_url

    queue = f"carnet-fault-{uuid.uuid4().hex[:8]}"
    saved = {key: app.conf.get(key) for key in ("broker_url", "task_default_queue", "broker_connection_timeout")}
    app.conf.update(task_default_queue=queue, broker_connection_timeout=1)
    set_broker_url(app, own_redis.url(0))
    yield {"url": own_redis.url(0), "queue": queue, "app": app, "server": own_redis}
    app.conf.update(saved)
    set_broker_url(app, saved["broker_url"])


@pytest.fixture
def start_own_worker(own_broker, tmp_path):
    """Start workers on ``own_broker``: ``start_own_worker(smtp_port, **env)``; all stopped at teardown."""
    from tests.notify_fixtures import Worker, worker_env

    workers = []

    def start(smtp_port: int, **extra):
        env = worker_env(own_broker, smtp_port, CARNET_VAR_DIR=tmp_path / "var", **extra)
        worker = Worker(env=env, queue=own_broker["queue"], log_path=tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker.start())
        return worker

    yield start
    for worker in workers:
        worker.stop()
