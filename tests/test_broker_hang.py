"""A Redis that hangs (accepts connections, never answers) delays a request's after-commit hand-off by about one
socket timeout, not for ever: the shipped ``CELERY_BROKER_TRANSPORT_OPTIONS`` bound it, the hand-off gives up,
and the notice stays pending for the sweep (issue 14, N5)."""

# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app
from notifications.delivery import sweep
from notifications.models import Notice
from tests.notify_fixtures import alice, claire, consult, david, set_broker_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def shipped():
    """``(transport options, connection timeout)`` that config.settings ships for a Redis broker.

    Read in a fresh process with ``REDIS_URL`` set, so that they are checked on the embedded defaults too
    (there the broker is the file system, with no socket to bound).
    """
    code = (
        "import json; from config import settings as s; "
        "print(json.dumps([s.CELERY_BROKER_TRANSPORT_OPTIONS, s.CELERY_BROKER_CONNECTION_TIMEOUT]))"
    )
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/0", "CARNET_DEBUG": "1"}
    done = subprocess.run(  # noqa: S603  the test's own interpreter on the project's settings
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    options, timeout = json.loads(done.stdout.strip().splitlines()[-1])
    return options, timeout


@pytest.fixture
def hung_redis():
    """A loopback socket that listens and never accepts: connections complete, no reply ever comes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.fixture
def broker_on(hung_redis, shipped):
    keys = ("broker_url", "broker_transport_options", "broker_connection_timeout")
    saved = {key: app.conf.get(key) for key in keys}
    options, timeout = shipped
    app.conf.update(  # the shipped settings (other tests' fixtures change them for their own broker)
        broker_transport_options=dict(options),
        broker_connection_timeout=timeout,
    )
    set_broker_url(app, hung_redis)
    yield hung_redis
    app.conf.update(saved)
    set_broker_url(app, saved["broker_url"])


def test_the_broker_options_bound_connect_and_replies(shipped):
    options, timeout = shipped
    assert 0 < options["socket_connect_timeout"] <= 2
    assert 1 < options["socket_timeout"] <= 3  # above the worker's 1 s BRPOP poll, below a user's patience
    assert timeout <= 2  # a publisher does not try again and again


def test_a_hung_broker_delays_the_hand_off_briefly_and_the_sweep_takes_over__N5(
    alice, david, broker_on, shipped, django_capture_on_commit_callbacks, monkeypatch
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        notice = consult(alice, david)
    elapsed = time.monotonic() - started
    assert elapsed < shipped[0]["socket_timeout"] + 1.0, elapsed  # ~2 s, not 6

    notice.refresh_from_db()
    assert notice.status == Notice.Status.PENDING  # the consultation went through; its notice waits
    queued = []
    monkeypatch.setattr(
        "notifications.outbox.enqueue_delivery", lambda notice_id, profile_id=None: queued.append(notice_id)
    )
    monkeypatch.setattr("notifications.delivery.broker_backlog", lambda: 0)  # the broker answers again
    later = timezone.now() + timedelta(seconds=settings.CARNET_NOTICE_SWEEP_GRACE_SECONDS + 1)
    assert sweep(later) == [notice.pk] and queued == [notice.pk]
