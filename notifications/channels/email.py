"""E-mail channel: a multipart text + HTML message in the recipient's language, through Django's mail backend.

SMTP failures are sorted for the delivery loop (N5): unreachable relay, timeouts and 4xx answers are
transient (retried with backoff), 5xx answers are permanent. Error reasons keep the SMTP code or exception
class only: relays often echo the recipient's address in their text.

Each worker process (thread) keeps its connection to the relay from one notice to the next
(``relay_connection``): a new SMTP session per message (connect, banner, EHLO, and in production STARTTLS and
AUTH) cost more than the message itself (bench/README.md, letters.py). A connection idle for a while is checked
with NOOP before use, so a relay that dropped it costs a reconnection, not a failed delivery; after any error the
connection is dropped and the next message opens a new one. What was sent and when it is marked does not change.
"""

from __future__ import annotations

import contextlib
import smtplib
import threading
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
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


# After this long without a message, a kept connection is checked (NOOP) before it carries the next one.
IDLE_CHECK_SECONDS = 5.0
_relay = threading.local()


def _backend_settings() -> tuple[Any, ...]:
    """What the kept connection was opened with: a change (tests override settings) opens another."""
    names = ("EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_USE_TLS", "EMAIL_USE_SSL")
    return tuple(getattr(settings, name, None) for name in names)


def _still_open(connection: Any) -> bool:
    smtp = getattr(connection, "connection", None)
    if smtp is None or not hasattr(smtp, "noop"):
        return True  # not an SMTP backend (files, memory): nothing to lose
    try:
        return bool(smtp.noop()[0] == 250)
    except (smtplib.SMTPException, OSError):
        return False


def relay_connection() -> Any:
    """This thread's open connection to the mail relay (Django's mail backend), opened on first use."""
    kept = getattr(_relay, "kept", None)
    if kept is not None:
        key, connection, last_used = kept
        if key == _backend_settings() and (
            time.monotonic() - last_used < IDLE_CHECK_SECONDS or _still_open(connection)
        ):
            return connection
        drop_relay_connection()
    connection = get_connection(fail_silently=False)
    if hasattr(connection, "open"):  # Django's backends have it; a backend need only send_messages
        connection.open()
    _relay.kept = (_backend_settings(), connection, time.monotonic())
    return connection


def drop_relay_connection() -> None:
    """Close this thread's kept connection, if any (after an error, or when its settings changed)."""
    kept = getattr(_relay, "kept", None)
    _relay.kept = None
    if kept is not None and hasattr(kept[1], "close"):
        with contextlib.suppress(smtplib.SMTPException, OSError):  # already broken: nothing left to close
            kept[1].close()


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
            try:
                connection = relay_connection()
                connection.send_messages([email])
            except BaseException:
                drop_relay_connection()  # whatever state the session is in, the next message starts afresh
                raise
            _relay.kept = (*_relay.kept[:2], time.monotonic())
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _smtp_code_error(min(codes) if codes else 550) from None
        except smtplib.SMTPResponseException as exc:
            raise _smtp_code_error(exc.smtp_code) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused or reset, DNS failure, timeout, server disconnected: try again later.
            raise TransientDeliveryError(type(exc).__name__) from None
