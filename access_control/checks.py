"""System checks of access control.

carnet.W020  no active account with an e-mail address may handle reviews: the A13 alert of an access to a
             high-profile profile would only be logged (``access_control.alerts``), nobody would be told.

It reads the accounts, so it is a database check: Django runs it with ``migrate`` (each deployment's migrate
step) and ``manage.py check --database default``, not with the plain ``check`` that needs no database.
"""

from collections.abc import Sequence

from django.apps import AppConfig
from django.contrib.auth.models import Permission
from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DatabaseError

from .alerts import reviewers_emails


@register(Tags.database)
def check_review_alert_recipients(
    app_configs: Sequence[AppConfig] | None, databases: Sequence[str] | None = None, **kwargs: object
) -> list[CheckMessage]:
    if not databases:
        return []
    try:
        recipients = reviewers_emails()
    except (DatabaseError, Permission.DoesNotExist):  # before the first migrate (and its post-migrate step)
        return []
    if recipients:
        return []
    return [
        Warning(
            "No active account with an e-mail address may handle reviews: A13 alerts on high-profile accesses "
            "will only be logged.",
            hint="Give an active staff account with an e-mail address the access_control.change_review "
            "permission (the supervisors' group), or make it a superuser.",
            id="carnet.W020",
        )
    ]
