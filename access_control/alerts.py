"""A13: every practitioner access to a high-profile profile raises an immediate alert to the reviewers.

The review row (``Review``, kind ``high_profile``) written in the access's own transaction is the durable record
and stays in the admin's review queue. The alert is an e-mail sent after commit by a Celery task that receives
the review's id only, to every active account with an e-mail address that may handle reviews
(``access_control.change_review``: the supervisors). It names neither the patient nor the practitioner, only the
review to open in the admin (behind its second factor). It is sent at least once: the task marks the review
alerted in the transaction that sent it, an SMTP failure is retried, and a sweep re-queues any review left
unalerted (broker down at commit, worker killed).
"""

import logging
import smtplib
from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .models import Review

logger = logging.getLogger(__name__)

SWEEP_AFTER = timedelta(minutes=2)  # an alert still unsent this long after its review is queued again
SWEEP_BATCH = 500


def queue_review_alert(review: Review) -> None:
    """Arrange for the reviewers to be alerted once the access's transaction commits."""
    review_id = review.pk
    transaction.on_commit(lambda: enqueue_review_alert(review_id))


def enqueue_review_alert(review_id: int) -> None:
    """Hand the review id to the broker. A broker failure is logged, not raised: the sweep retries."""
    try:
        alert_review_task.apply_async(args=[review_id], retry=False)
    except Exception:  # the broker is down or misconfigured; the review stays unalerted for the sweep
        logger.warning(
            "Could not enqueue the alert of review %s; the sweep will re-queue it.", review_id, exc_info=True
        )


def reviewers_emails() -> list[str]:
    """The addresses of the active accounts that may handle reviews (group or own permission, or superuser)."""
    permission = Permission.objects.get(content_type__app_label="access_control", codename="change_review")
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    users = users.filter(Q(groups__permissions=permission) | Q(user_permissions=permission) | Q(is_superuser=True))
    return sorted(set(users.values_list("email", flat=True)))


def send_review_alert(review_id: int) -> bool:
    """Send the alert of one high-profile review unless it was sent already; ``True`` when this call sent it.

    The review stays locked while the message goes out, so two runs of the task never both send it; an SMTP error
    rolls the marking back and propagates (the task retries it).
    """
    with transaction.atomic():
        review = (
            Review.objects.select_for_update()
            .filter(pk=review_id, kind=Review.Kind.HIGH_PROFILE, alerted_at__isnull=True)
            .first()
        )
        if review is None:
            return False
        recipients = reviewers_emails()
        if recipients:
            link = settings.CARNET_PUBLIC_URL.rstrip("/") + reverse(
                "admin:access_control_review_change", args=[review.pk]
            )
            with translation.override(settings.LANGUAGE_CODE):
                EmailMessage(
                    subject=_("Carnet — accès à un profil sensible à examiner (revue n° %(id)s)") % {"id": review.pk},
                    body=_(
                        "Un professionnel de santé vient d'accéder à un profil signalé comme sensible (règle A13).\n\n"
                        "Examinez cet accès dans la file des revues : %(link)s\n\n"
                        "Ce message ne contient aucune donnée de patient ; la revue est consultable dans "
                        "l'administration de Carnet, après double authentification."
                    )
                    % {"link": link},
                    to=recipients,
                ).send()
        else:
            logger.warning("No active account with an e-mail may handle reviews: review %s was not alerted.", review.pk)
        review.alerted_at = timezone.now()
        review.save(update_fields=["alerted_at"])
    return bool(recipients)


def sweep_review_alerts(now: datetime) -> int:
    """Queue again the alerts of high-profile reviews left unsent for ``SWEEP_AFTER``; returns how many."""
    due = list(
        Review.objects.filter(kind=Review.Kind.HIGH_PROFILE, alerted_at__isnull=True, created_at__lte=now - SWEEP_AFTER)
        .order_by("pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for review_id in due:
        enqueue_review_alert(review_id)
    return len(due)


@shared_task(  # type: ignore[untyped-decorator]  # celery ships no types
    name="access_control.alert_review",
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=True,
    max_retries=8,
)
def alert_review_task(review_id: int) -> bool:
    return send_review_alert(review_id)


@shared_task(name="access_control.sweep_review_alerts")  # type: ignore[untyped-decorator]  # celery ships no types
def sweep_review_alerts_task() -> int:
    return sweep_review_alerts(timezone.now())
