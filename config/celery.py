"""The Celery application, whose broker comes from settings and whose tasks take ids only."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("carnet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
