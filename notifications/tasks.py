"""Celery tasks of the notice pipeline, which take notice and batch ids only (N5)."""

from celery import Task, shared_task
from django.conf import settings

# The hard limit stays below CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS (config/settings.py enforces it): a run is
# killed before its claim can be taken over by another, which keeps delivery at most once.
_TIME_LIMIT = settings.CARNET_NOTICE_TASK_TIME_LIMIT_SECONDS


@shared_task(  # type: ignore[untyped-decorator]  # celery ships no types
    bind=True,
    name="notifications.deliver_notice",
    acks_late=True,
    max_retries=None,  # attempts are counted on the notice (CARNET_NOTICE_MAX_ATTEMPTS)
    soft_time_limit=_TIME_LIMIT - 10,
    time_limit=_TIME_LIMIT,
)
def deliver_notice(self: Task, notice_id: int, profile_id: int | None = None) -> str:
    from .delivery import RetryDelivery, deliver

    try:
        return deliver(notice_id, profile_id)
    except RetryDelivery as exc:
        # Exponential backoff with jitter, computed by the delivery (the notice is pending again meanwhile;
        # should this message be lost, the sweep re-queues the notice).
        raise self.retry(countdown=exc.countdown, exc=exc) from None


@shared_task(  # type: ignore[untyped-decorator]  # celery ships no types
    name="notifications.deliver_notices",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=_TIME_LIMIT - 10,
    time_limit=_TIME_LIMIT,
)
def deliver_notices(pairs: list[tuple[int, int | None]]) -> int:
    """Deliver the notices of one commit: ``[[notice_id, profile_id], …]`` (ids only). Returns how many went."""
    from .delivery import deliver_batch
    from .models import Notice

    outcomes = deliver_batch([(notice_id, profile_id) for notice_id, profile_id in pairs])  # JSON made them lists
    return sum(outcome == Notice.Status.SENT for outcome in outcomes.values())


@shared_task(name="notifications.sweep_notices", ignore_result=True)  # type: ignore[untyped-decorator]  # celery ships no types
def sweep_notices() -> int:
    """Beat, every CARNET_NOTICE_SWEEP_SECONDS: re-queue notices left pending or stuck in sending (N5).

    Harmless when it runs twice (two schedulers, a duplicate message): every change is a conditional UPDATE and
    a notice queued twice is still claimed by one run only.
    """
    from .delivery import sweep

    return len(sweep())


@shared_task(name="notifications.close_letter_batches", ignore_result=True)  # type: ignore[untyped-decorator]  # celery ships no types
def close_letter_batches() -> list[int]:
    """Beat, daily at CARNET_LETTER_BATCH_HOUR: close the day's print batch and build its files (N4)."""
    from .batches import close_letter_batches as close

    return close()
