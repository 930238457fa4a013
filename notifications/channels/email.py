"""E-mail channel: a multipart text + HTML message in the recipient's language, through Django's mail backend.

SMTP failures are sorted for the delivery loop (N5): unreachable relay, timeouts and 4xx answers are
transient (retried with backoff), 5xx answers are permanent. Error reasons keep the SMTP code or exception
class only: relays often echo the recipient's address in their text.
"""

from __future__ import annotations

import smtplib
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from ..content import build_message
from .base import Channel, PermanentDeliveryError, TransientDeliveryError, UndeliverableError

if TYPE_CHECKING:  # records and the directory import the notifications at run time
    from ..models import Notice


def recipient_address(notice: Notice) -> str:
    """The patient's e-mail (N2), or the treating doctor's for the doctor's copy of an emergency notice (N3)."""
    if notice.recipient_practitioner_id is not None:
        return notice.recipient_practitioner.email  # type: ignore[union-attr]  # its id is set: the doctor exists
    return notice.profile.email


def message_id(notice: Notice) -> str:
    """The notice's ``Message-ID``, the same on every attempt: a resend is the same message to relays and clients.

    It names the notice id only (no patient data), under ``CARNET_MAIL_DOMAIN``.
    """
    return f"<notice-{notice.pk}.carnet@{settings.CARNET_MAIL_DOMAIN}>"


def render_email(notice: Notice) -> EmailMultiAlternatives:
    address = recipient_address(notice)
    if not address:
        raise UndeliverableError("no e-mail address")
    message = build_message(notice)
    with translation.override(message.language):
        context = {"message": message}
        text = render_to_string("notifications/email/message.txt", context)
        html = render_to_string("notifications/email/message.html", context)
    email = EmailMultiAlternatives(
        subject=f"Carnet — {message.subject}",
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers={
            "Message-ID": message_id(notice),
            "X-Carnet-Reference": message.reference,
            "Auto-Submitted": "auto-generated",
        },
    )
    email.attach_alternative(html, "text/html")
    return email


def _smtp_code_error(code: int) -> Exception:
    if 400 <= code < 500:
        return TransientDeliveryError(f"SMTP {code}")
    return PermanentDeliveryError(f"SMTP {code}")


class EmailChannel(Channel):
    name = "email"

    def message_id(self, notice: Notice) -> str:
        return message_id(notice)

    def send(self, notice: Notice) -> None:
        email = render_email(notice)
        try:
            email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _smtp_code_error(min(codes) if codes else 550) from None
        except smtplib.SMTPResponseException as exc:
            raise _smtp_code_error(exc.smtp_code) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused or reset, DNS failure, timeout, server disconnected: try again later.
            raise TransientDeliveryError(type(exc).__name__) from None
