"""A Redis cache that keeps answering while Redis is down, from a per-process memory cache.

Carnet keeps only short-lived things in the cache: failure counters (sign-in, recovery, look-ups: see
``plumbing.throttling``), the API throttles' counters, one-shot form tokens, recovery codes and the staff
dashboard's figures. None of them is worth a 500 during a Redis outage. ``ResilientRedisCache`` is Django's
``RedisCache``; when a call fails with a Redis connection or timeout error it logs once, answers from a
``LocMemCache`` of this process instead, and does not try Redis again for ``RETRY_SECONDS`` (so a dead Redis
costs one refused connection per process every few seconds, not one per call). What that means for each use is
in docs/architecture.md, "When Redis is down": in short, counters keep their limits per process (they never
fail open), and what was stored in Redis before the outage is not seen until it comes back.

Redis errors that are not about reaching the server (a wrong command, a full memory) still raise.
"""

import logging
import threading
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    import redis.exceptions

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ConnectionError, TimeoutError)


class ResilientRedisCache(RedisCache):
    """``RedisCache`` falling back to a per-process memory cache while Redis cannot be reached."""

    def __init__(self, server, params):
        options = dict(params.get("OPTIONS") or {})
        # A Redis that hangs must not hang the request either: fail fast, then fall back.
        options.setdefault("socket_connect_timeout", 0.5)
        options.setdefault("socket_timeout", 1.0)
        super().__init__(server, {**params, "OPTIONS": options})
        self._fallback = LocMemCache(f"carnet-fallback-{id(self)}", {"TIMEOUT": params.get("TIMEOUT", 300)})
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._errors = _unreachable_errors()

    @property
    def redis_is_down(self) -> bool:
        """True while this process answers from its memory cache."""
        return time.monotonic() < self._down_until

    def _call(self, name: str, *args, **kwargs):
        if not self.redis_is_down:
            try:
                return getattr(super(), name)(*args, **kwargs)
            except self._errors as exc:
                self._went_down(exc)
        return getattr(self._fallback, name)(*args, **kwargs)

    def _went_down(self, exc: BaseException) -> None:
        with self._lock:
            first = not self.redis_is_down
            self._down_until = time.monotonic() + RETRY_SECONDS
        if first:
            logger.warning("Redis cache unreachable (%s); answering from this process's memory.", type(exc).__name__)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._call("get", key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", key, timeout, version)

    def delete(self, key, version=None):
        return self._call("delete", key, version)

    def get_many(self, keys, version=None):
        return self._call("get_many", keys, version)

    def has_key(self, key, version=None):
        return self._call("has_key", key, version)

    def incr(self, key, delta=1, version=None):
        return self._call("incr", key, delta, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", data, timeout, version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", keys, version)

    def clear(self):
        self._fallback.clear()
        return self._call("clear")

    def hit(self, key: str, timeout: int) -> int:
        """Add one to the counter ``key`` (created for ``timeout`` seconds) and return it: one round trip.

        ``SET key 0 EX timeout NX`` then ``INCR key`` in one pipeline (any Redis version); Django's ``incr`` would
        take two (``EXISTS``, then ``INCR``), after an ``add``.
        """
        if not self.redis_is_down:
            try:
                name = self.make_and_validate_key(key)
                client = self._cache.get_client(name, write=True)  # type: ignore[attr-defined]  # RedisCache's client
                pipeline = client.pipeline(transaction=False)
                pipeline.set(name, 0, ex=timeout, nx=True)
                pipeline.incr(name)
                return int(pipeline.execute()[1])
            except self._errors as exc:
                self._went_down(exc)
        return hit(self._fallback, key, timeout)


def hit(cache, key: str, timeout: int) -> int:
    """Add one to the counter ``key`` of ``cache`` (created for ``timeout`` seconds) and return the count.

    ``ResilientRedisCache.hit`` in one round trip (also through ``django.core.cache.cache``, whose proxy hands
    the method on); with any other cache, ``add`` then ``incr``.
    """
    own_hit = getattr(cache, "hit", None)
    if own_hit is not None:
        return int(own_hit(key, timeout))
    cache.add(key, 0, timeout=timeout)
    try:
        return int(cache.incr(key))
    except ValueError:  # the counter lapsed between add() and incr()
        cache.set(key, 1, timeout=timeout)
        return 1
