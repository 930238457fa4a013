"""Scheduled lifecycle rules (L3, L5, L7, T4) as Celery tasks.

They take no arguments (nothing personal crosses the broker: docs/conventions.md, Side effects after commit),
read the clock when they run, and are idempotent: each re-checks under lock what is due, so a task delivered
twice does its work once. The schedule is ``CELERY_BEAT_SCHEDULE`` in ``config/settings.py``.
"""

from celery import shared_task
from django.utils import timezone


@shared_task(name="records.open_due_profiles", acks_late=True)
def open_due_profiles_task() -> int:
    from .lifecycle_jobs import open_due_profiles

    return open_due_profiles(timezone.now())


@shared_task(name="records.close_expired_suspensions", acks_late=True)
def close_expired_suspensions_task() -> int:
    from .lifecycle_jobs import close_expired_suspensions

    return close_expired_suspensions(timezone.now())


@shared_task(name="records.purge_due_profiles", acks_late=True)
def purge_due_profiles_task() -> int:
    from .lifecycle_jobs import purge_due_profiles

    return purge_due_profiles(timezone.now())


# The roster enrolment's batch hand-off to the notice pipeline (N5) lives with the enrolment; imported here so
# that the worker, which discovers ``<app>.tasks`` modules, registers it.
from .enrolment import enqueue_enrolment_notices  # noqa: E402, F401
from .heartbeat import worker_heartbeat  # noqa: E402, F401  (records.worker_heartbeat, for /readyz)
