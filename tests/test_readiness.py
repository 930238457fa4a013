"""``/readyz`` (records.health): 200 when the database, cache, broker, document store and master key work and a
worker answered recently; 503 naming what failed, without any secret; ``/healthz`` stays a bare liveness answer.

The worker's heartbeat, with a real worker, is in tests/test_worker_heartbeat.py; here it is recorded in-process.
"""

import logging

import pytest

from records import health
from records.heartbeat import record_heartbeat
from tests.notify_fixtures import redis_url

pytestmark = pytest.mark.django_db

CHECKS = ["database", "cache", "broker", "documents", "master_key", "worker"]
SECRET = "s3cr3t-pa55word"


@pytest.fixture(autouse=True)
def _broker(settings):
    settings.CELERY_BROKER_URL = redis_url()
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    record_heartbeat()  # a worker answered just now


def test_ready_when_every_part_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": dict.fromkeys(CHECKS, "ok")}
    assert "no-cache" in response["Cache-Control"]


def test_the_newest_stored_data_key_must_unwrap_with_the_configured_keys__D(client, settings, personas):
    assert client.get("/readyz").status_code == 200  # the cast's documents are wrapped with the test key
    settings.CARNET_MASTER_KEY = "other:" + "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["master_key"] == "failed"


def test_unready_names_each_failing_part_and_no_secret(client, settings, tmp_path, caplog):
    settings.CELERY_BROKER_URL = f"redis://:{SECRET}@127.0.0.1:1/0"  # nothing listens on port 1
    settings.CARNET_MASTER_KEY = None  # DEBUG off: no development key either
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(blocker)}},
    }
    with caplog.at_level(logging.WARNING, logger="records.health"):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {
            "database": "ok",
            "cache": "ok",
            "broker": "failed",
            "documents": "failed",
            "master_key": "failed",
            "worker": "ok",
        },
    }
    logged = caplog.text
    assert "readiness check broker failed" in logged
    assert SECRET not in response.content.decode() and SECRET not in logged


def test_a_failing_database_makes_the_process_unready(client, monkeypatch):
    from django.db import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("connection to server at 10.0.0.5 failed")

    monkeypatch.setattr(health, "connection", type("Broken", (), {"cursor": broken})())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "failed"
    assert "10.0.0.5" not in response.content.decode()


def test_a_later_check_joins_through_the_hook(client, monkeypatch):
    monkeypatch.setattr(health, "READINESS_CHECKS", list(health.READINESS_CHECKS))

    def search_index_answers():
        raise RuntimeError("the search index did not answer")

    health.register_readiness_check("search_index", search_index_answers)
    with pytest.raises(ValueError):
        health.register_readiness_check("search_index", search_index_answers)
    with pytest.raises(ValueError):
        health.register_readiness_check("worker", search_index_answers)  # records' own, registered in ready()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {**dict.fromkeys(CHECKS, "ok"), "search_index": "failed"}


def test_liveness_stays_up_while_a_part_is_down(client, settings):
    settings.CARNET_MASTER_KEY = None
    assert client.get("/readyz").status_code == 503
    response = client.get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok")  # no restart loop for an outage elsewhere
    assert client.post("/readyz").status_code == 405
