"""A Redis that hangs (accepts connections, never answers) delays a request's after-commit hand-off by about one
socket timeout, not for ever: the shipped ``CELERY_BROKER_TRANSPORT_OPTIONS`` bound it, the hand-off gives up,
and the notice stays pending for the sweep (issue 14, N5)."""

# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

import socket
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app
from notifications.delivery import sweep
from notifications.models import Notice
from tests.notify_fixtures import alice, claire, consult, david, set_broker_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def hung_redis():
    """A loopback socket that listens and never accepts: connections complete, no reply ever comes."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.fixture
def broker_on(hung_redis):
    keys = ("broker_url", "broker_transport_options", "broker_connection_timeout")
    saved = {key: app.conf.get(key) for key in keys}
    app.conf.update(  # the shipped settings (other tests' fixtures change them for their own broker)
        broker_transport_options=dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS),
        broker_connection_timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT,
    )
    set_broker_url(app, hung_redis)
    yield hung_redis
    app.conf.update(saved)
    set_broker_url(app, saved["broker_url"])


def test_the_broker_options_bound_connect_and_replies():
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert 0 < options["socket_connect_timeout"] <= 2
    assert 1 < options["socket_timeout"] <= 3  # above the worker's 1 s BRPOP poll, below a user's patience
    assert settings.CELERY_BROKER_CONNECTION_TIMEOUT <= 2  # a publisher does not try again and again


def test_a_hung_broker_delays_the_hand_off_briefly_and_the_sweep_takes_over__N5(
    alice, david, broker_on, django_capture_on_commit_callbacks, monkeypatch
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        notice = consult(alice, david)
    elapsed = time.monotonic() - started
    assert elapsed < settings.CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"] + 1.0, elapsed  # ~2 s, not 6

    notice.refresh_from_db()
    assert notice.status == Notice.Status.PENDING  # the consultation went through; its notice waits
    queued = []
    monkeypatch.setattr("notifications.outbox.enqueue_delivery", queued.append)
    monkeypatch.setattr("notifications.delivery.broker_backlog", lambda: 0)  # the broker answers again
    later = timezone.now() + timedelta(seconds=settings.CARNET_NOTICE_SWEEP_GRACE_SECONDS + 1)
    assert sweep(later) == [notice.pk] and queued == [notice.pk]
