"""Readiness: can this process serve now? The checks behind ``/readyz`` (``/healthz`` only says it is alive).

Each check is a function that returns when its part works and raises otherwise. They touch the parts a
request needs: the database, the cache and the Celery broker (Redis in production), the document store
(a probe file written, read back and deleted) and the master key (parses; wraps and unwraps a fresh data key
and the newest stored one). The outcome names the checks and says ``ok`` or ``failed``, nothing more: no
exception text, which could carry a URL with its password, and never patient data.

Other parts add their own check with ``register_readiness_check`` (for instance, later, "a Celery worker
answered recently"); ``READINESS_CHECKS`` is the list the endpoint runs, in order.
"""

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection
from kombu import Connection

from . import crypto

logger = logging.getLogger(__name__)

PROBE_FOLDER = "readiness"
TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    check: Callable[[], None]


READINESS_CHECKS: list[ReadinessCheck] = []


def register_readiness_check(name: str, check: Callable[[], None]) -> None:
    """Add ``check`` (returns when fine, raises otherwise) to the endpoint's list, under ``name``."""
    if any(existing.name == name for existing in READINESS_CHECKS):
        raise ValueError(f"a readiness check named {name!r} is already registered.")
    READINESS_CHECKS.append(ReadinessCheck(name, check))


def run_readiness_checks() -> dict[str, bool]:
    """Run every check; ``{name: passed}`` in registration order. A failure is logged by name and type only."""
    outcome = {}
    for entry in READINESS_CHECKS:
        try:
            entry.check()
        except Exception as exc:  # noqa: BLE001  any failure makes the process unready; the next check still runs
            logger.warning("readiness check %s failed (%s)", entry.name, type(exc).__name__)
            outcome[entry.name] = False
        else:
            outcome[entry.name] = True
    return outcome


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            raise RuntimeError("the database answered SELECT 1 with something else")


def check_cache() -> None:
    key, value = f"readiness:{secrets.token_hex(8)}", secrets.token_hex(8)
    cache.set(key, value, timeout=30)
    try:
        if cache.get(key) != value:
            raise RuntimeError("the cache did not give back what was just stored")
    finally:
        cache.delete(key)


def check_broker() -> None:
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    options.setdefault("socket_connect_timeout", TIMEOUT_SECONDS)
    options.setdefault("socket_timeout", TIMEOUT_SECONDS)
    with Connection(settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=TIMEOUT_SECONDS)
        conn.default_channel  # noqa: B018  Redis: opens the channel's client connection for real


def check_documents() -> None:
    store = storages["documents"]
    content = secrets.token_bytes(32)
    name = store.save(f"{PROBE_FOLDER}/probe-{secrets.token_hex(8)}", ContentFile(content))
    try:
        with store.open(name, "rb") as handle:
            if handle.read() != content:
                raise RuntimeError("the document store did not give back what was just written")
    finally:
        store.delete(name)


def check_master_key() -> None:
    data_key = crypto.new_data_key()
    key_id, wrapped = crypto.wrap_data_key(data_key)
    if crypto.unwrap_data_key(wrapped, key_id) != data_key:
        raise RuntimeError("the master key does not unwrap what it wrapped")
    # The keys configured are the ones the data was written with: the newest stored data key still unwraps.
    for entry in crypto.rotation_registry():
        if isinstance(entry, crypto.WrappedKeyField):
            model = apps.get_model(entry.model)
            newest = model._base_manager.order_by("-pk").values_list(entry.key_field, entry.id_field).first()
            if newest is not None:
                crypto.unwrap_data_key(*newest)


register_readiness_check("database", check_database)
register_readiness_check("cache", check_cache)
register_readiness_check("broker", check_broker)
register_readiness_check("documents", check_documents)
register_readiness_check("master_key", check_master_key)
