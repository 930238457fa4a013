"""A Redis server of the test's own, to stop and restart under the web tier and the worker (issue 14).

The fault tests never touch the shared Redis (port 6379 serves other sessions and CI): ``own_redis`` starts
``redis-server`` on a free loopback port, without persistence (a restart loses everything, like a Redis whose
data was not saved), and ``stop()`` / ``start()`` it on the same port.
"""

import shutil
import subprocess
import time

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
