"""The worker's heartbeat: beat queues it, a worker records when it ran it, ``/readyz`` reads how long ago.

A heartbeat recorded means the whole path of the scheduled and queued work answered: beat sent a message, the
broker kept it, a worker took it and wrote to the database. The readiness check ``worker`` fails when the newest
heartbeat is older than ``CARNET_WORKER_HEARTBEAT_STALE_SECONDS`` (3 periods by default), or when there is none.
A ``celery control ping`` would say the same of the worker alone, but it waits out its timeout on a broker that
hangs; the heartbeat costs the readiness check one primary-key read of the database, and nothing of Redis.
"""

import logging
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import connections
from django.utils import timezone

from .models import WorkerHeartbeat

logger = logging.getLogger(__name__)

HEARTBEAT = "worker"


def record_heartbeat(answered_by: str = "") -> None:
    """Upsert the heartbeat row with the current time (one statement: two runs at once leave one row)."""
    WorkerHeartbeat.objects.bulk_create(
        [WorkerHeartbeat(name=HEARTBEAT, seen_at=timezone.now(), answered_by=answered_by[:200])],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["seen_at", "answered_by"],
    )


@shared_task(bind=True, name="records.worker_heartbeat", ignore_result=True)
def worker_heartbeat(self) -> None:
    """Beat, every CARNET_WORKER_HEARTBEAT_SECONDS: record that a worker answered (``/readyz`` check ``worker``)."""
    record_heartbeat(self.request.hostname or "")


@worker_ready.connect
def heartbeat_on_start(sender, **kwargs) -> None:
    """A worker that starts records a heartbeat at once: ready without waiting a period for beat's first one."""
    try:
        record_heartbeat(getattr(sender, "hostname", "") or "")
    except Exception as exc:  # noqa: BLE001  the database may be down at start; beat's heartbeats follow
        logger.warning("Could not record the worker's start heartbeat (%s).", type(exc).__name__)
    finally:
        connections.close_all()  # the main process keeps no connection; the pool's processes open their own


def check_worker() -> None:
    """Readiness: a worker ran the heartbeat within the stale limit; raises otherwise."""
    seen_at = WorkerHeartbeat.objects.filter(name=HEARTBEAT).values_list("seen_at", flat=True).first()
    if seen_at is None:
        raise RuntimeError("no worker heartbeat recorded yet")
    age = timezone.now() - seen_at
    if age > timedelta(seconds=settings.CARNET_WORKER_HEARTBEAT_STALE_SECONDS):
        raise RuntimeError(f"no worker heartbeat for {age.total_seconds():.0f} s")
