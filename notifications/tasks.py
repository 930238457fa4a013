"""Celery tasks of the notice pipeline. They take notice ids only (house style 3)."""

from celery import shared_task


@shared_task(name="notifications.deliver_notice", acks_late=True)
def deliver_notice(notice_id: int) -> None:
    from .delivery import deliver

    deliver(notice_id)
