"""``/readyz`` check ``worker`` (records.heartbeat), with a real worker: ok once a worker ran the heartbeat, failed
(503, named) when the newest heartbeat is older than ``CARNET_WORKER_HEARTBEAT_STALE_SECONDS`` or missing, and
answered from the database alone, so that it still answers (never a 500) while Redis is down."""

# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from config.celery import app
from records.heartbeat import record_heartbeat, worker_heartbeat
from records.models import WorkerHeartbeat
from tests.notify_fixtures import broker, free_port, smtp_server, start_worker, wait_until  # noqa: F401  (fixtures)

OTHERS = {"database": "ok", "cache": "ok", "broker": "ok", "documents": "ok", "master_key": "ok"}


def _readiness(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.json()["checks"]


def test_the_heartbeat_is_scheduled_with_a_short_expiry():
    entry = settings.CELERY_BEAT_SCHEDULE["records.worker_heartbeat"]
    assert entry["task"] == worker_heartbeat.name and worker_heartbeat.name in app.tasks
    assert entry["schedule"] == settings.CARNET_WORKER_HEARTBEAT_SECONDS
    assert entry["options"]["expires"] <= settings.CARNET_WORKER_HEARTBEAT_SECONDS  # no backlog after an outage
    assert settings.CARNET_WORKER_HEARTBEAT_STALE_SECONDS == 3 * settings.CARNET_WORKER_HEARTBEAT_SECONDS


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_readiness_follows_the_heartbeat_of_a_real_worker(client, smtp_server, broker, start_worker, settings):
    settings.CELERY_BROKER_URL = broker["url"]
    assert _readiness(client) == (503, {**OTHERS, "worker": "failed"})  # no worker ever answered

    start_worker(smtp_server.port)  # a starting worker records a heartbeat at once (worker_ready)
    wait_until(WorkerHeartbeat.objects.exists, timeout=30, message="the worker's start heartbeat")
    heartbeat = WorkerHeartbeat.objects.get()
    assert heartbeat.answered_by.startswith(broker["queue"] + "@")  # the worker's node name
    assert abs(timezone.now() - heartbeat.seen_at) < timedelta(seconds=30)
    assert _readiness(client) == (200, {**OTHERS, "worker": "ok"})

    stale = timedelta(seconds=settings.CARNET_WORKER_HEARTBEAT_STALE_SECONDS)
    with time_machine.travel(heartbeat.seen_at + stale - timedelta(seconds=1), tick=False):
        assert _readiness(client)[0] == 200  # late, within the limit
    with time_machine.travel(heartbeat.seen_at + stale + timedelta(seconds=1), tick=False):
        assert _readiness(client) == (503, {**OTHERS, "worker": "failed"})  # the worker stopped answering

    # The heartbeat set back (the row is stale, the clock is now): beat's next heartbeat makes it ready again.
    WorkerHeartbeat.objects.update(seen_at=timezone.now() - stale - timedelta(seconds=1))
    assert _readiness(client) == (503, {**OTHERS, "worker": "failed"})
    worker_heartbeat.apply_async()  # what beat sends every CARNET_WORKER_HEARTBEAT_SECONDS
    wait_until(lambda: _readiness(client)[0] == 200, timeout=30, message="the next heartbeat")


@pytest.mark.django_db
def test_the_worker_check_answers_from_the_database_while_redis_is_down(client, settings):
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.CELERY_BROKER_URL = dead
    settings.CACHES = {"default": {"BACKEND": "plumbing.cache.ResilientRedisCache", "LOCATION": dead}}
    record_heartbeat()
    status, checks = _readiness(client)
    assert status == 503 and checks["broker"] == "failed"
    assert checks["worker"] == "ok"  # a worker answered a moment ago; Redis being down does not hide it
