"""The web tier through a Redis outage and a Redis restart (issue 14, items 1 and 6), on a Redis of its own.

During the outage every signed-in page, the admin and the API answer (no 5xx), sign-in keeps refusing after
the same number of failures (the counters fall back to this process's memory, never open), and a consultation
succeeds with its notice waiting in the outbox. After the restart (Redis empty) the sessions are still valid,
because the session epoch lives in the database, and the sweep hands the waiting notice to the broker: one
notice, one message, nothing lost or doubled.
"""

import time

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from access_control import api as access
from notifications.delivery import sweep
from notifications.models import Notice
from plumbing import cache as resilient_cache
from tests.api_fixtures import token_for
from tests.fault_fixtures import own_redis  # noqa: F401  (fixture)
from tests.notify_fixtures import set_broker_url
from tests.signin_fixtures import verified_client
from tests.test_signin import THROTTLED, patient_password

pytestmark = [pytest.mark.worker, pytest.mark.django_db]


@pytest.fixture
def redis_cache_and_broker(request, settings, monkeypatch):
    """The cache and this process's Celery app on ``own_redis``; restored afterwards."""
    from config.celery import app

    server = request.getfixturevalue("own_redis")
    monkeypatch.setattr(resilient_cache, "RETRY_SECONDS", 0.2)  # try Redis again soon after it is back
    settings.CACHES = {"default": {"BACKEND": "plumbing.cache.ResilientRedisCache", "LOCATION": server.url(1)}}
    saved = {key: app.conf.get(key) for key in ("broker_url", "task_default_queue", "broker_connection_timeout")}
    app.conf.update(task_default_queue="carnet-fault-web", broker_connection_timeout=1)
    set_broker_url(app, server.url(0))
    yield server
    app.conf.update(saved)
    set_broker_url(app, saved["broker_url"])


def _queued(server) -> int:
    import redis

    return redis.Redis.from_url(server.url(0)).llen("carnet-fault-web")


def test_pages_api_and_sign_in_answer_through_a_redis_outage_and_sessions_survive_its_restart(
    personas, redis_cache_and_broker, settings, django_capture_on_commit_callbacks
):
    server = redis_cache_and_broker
    alice, david = personas.alice, personas.david
    patient = verified_client(Client(), alice.user)
    practitioner = verified_client(Client(), david.user)
    staff = verified_client(Client(), personas.karim)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(alice.user)}")

    def answers() -> dict[str, int]:
        return {
            "patient": patient.get(reverse("patients:dashboard")).status_code,
            "practitioner": practitioner.get(reverse("practitioners:home")).status_code,
            "admin": staff.get("/admin/").status_code,
            "api": api.get(reverse("api-patient-profiles")).status_code,
            "anonymous api": APIClient().get(reverse("api-patient-profiles")).status_code,
        }

    expected = {"patient": 200, "practitioner": 200, "admin": 200, "api": 200, "anonymous api": 401}
    assert answers() == expected

    server.stop()
    assert answers() == expected  # Redis is down: no 5xx, and nobody is signed out

    # Sign-in keeps its limit: the counters fall back to this process's memory (never fail open).
    intruder = Client(REMOTE_ADDR="198.51.100.20")
    refusals = [patient_password(intruder, alice.email, password="pas-le-bon") for _ in range(6)]
    assert [r.status_code for r in refusals] == [200] * settings.CARNET_LOGIN_ATTEMPTS + [429]
    assert THROTTLED in refusals[-1].text

    # A consultation succeeds; its notice waits in the outbox (the broker is down at commit).
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        decision = access.open_record(david, alice)
    assert decision.allowed
    assert time.monotonic() - started < 5  # the failed hand-off to the broker does not hang the request
    notice = Notice.objects.get(profile=alice, kind=Notice.Kind.CONSULTATION)
    assert notice.status == Notice.Status.PENDING

    server.start()  # empty: every key in the cache and every queued message is gone
    time.sleep(0.3)
    assert answers() == expected  # sessions survive the restart (the epoch is in the database)

    settings.CARNET_NOTICE_SWEEP_GRACE_SECONDS = 0
    requeued = sweep()  # the personas' own notices (pre-opening...) are pending too: no worker in this test
    assert notice.pk in requeued and len(set(requeued)) == len(requeued)
    assert _queued(server) == len(requeued)  # one message a notice: nothing lost, nothing doubled
    assert sweep() == []  # just handed over: not again within the grace (the queue now holds it)


def test_sign_out_everywhere_still_works_while_redis_is_down(personas, redis_cache_and_broker):
    alice = personas.alice
    laptop = verified_client(Client(), alice.user)
    phone = verified_client(Client(), alice.user)
    redis_cache_and_broker.stop()
    assert phone.post(reverse("patients:logout_everywhere")).status_code == 302
    assert laptop.get(reverse("patients:dashboard")).status_code == 302  # the other session is over


def test_the_api_throttle_counts_in_redis_then_in_memory_through_an_outage(
    personas, redis_cache_and_broker, settings, monkeypatch
):
    """One counter per token and window in Redis (``plumbing.cache.hit``: SET NX EX + INCR, one round trip); while
    Redis is down the same allowance holds from this process's memory (never open), with ``Retry-After``."""
    import redis
    from django.core.cache import cache

    server = redis_cache_and_broker
    settings.CARNET_API_TOKEN_RATE = "3/hour"
    pipelined = []
    monkeypatch.setattr(
        resilient_cache.ResilientRedisCache,
        "hit",
        lambda self, key, timeout, _hit=resilient_cache.ResilientRedisCache.hit: (
            pipelined.append(key) or _hit(self, key, timeout)
        ),
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(personas.alice.user)}")
    assert [api.get(reverse("api-patient-profiles")).status_code for _ in range(3)] == [200] * 3
    refused = api.get(reverse("api-patient-profiles"))
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 3600
    keys = redis.Redis.from_url(server.url(1)).keys("*throttle*")
    assert len(keys) == 1  # one counter, not a list of request times
    (key,) = keys
    assert int(redis.Redis.from_url(server.url(1)).get(key)) == 4
    assert len(pipelined) == 4  # each call through the one-round-trip pipeline, not add() and incr()
    assert 0 < redis.Redis.from_url(server.url(1)).ttl(key) <= 3600  # it lapses with its window

    server.stop()
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(personas.alice.user, name='Autre')}")
    answers = [other.get(reverse("api-patient-profiles")).status_code for _ in range(4)]
    assert cache.redis_is_down
    assert answers == [200, 200, 200, 429]  # the allowance holds from memory
    server.start()
