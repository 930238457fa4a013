"""The Celery application, whose broker comes from settings and whose tasks take ids only."""

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("carnet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_db_connections(sender: Any = None, **kwargs: Any) -> None:
    """Around each task, what Django does around each request: close a connection broken or past CONN_MAX_AGE.

    Celery's own Django fix-up closes every connection before and after each task unless CELERY_DB_REUSE_MAX is
    set (settings.py sets it): one new PostgreSQL session per notice was a fifth of a delivery's time
    (bench/README.md, letters.py). Kept connections get Django's health check (CONN_HEALTH_CHECKS) on first use.
    """
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # run in the caller's process, maybe inside its transaction: leave its connection alone
    from django.db import close_old_connections

    close_old_connections()
