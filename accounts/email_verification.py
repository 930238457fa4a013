"""Proving that a patient reads an e-mail address (N2): a 6-digit code sent to it, kept hashed in the session.

Used at activation (L4) and when the holder changes their address. The code is valid
``OTP_EMAIL_TOKEN_VALIDITY`` seconds, a new one can be sent once a minute, and after
``MAX_TRIES`` wrong answers it is void (a new one must be sent). The message carries the code only.
"""

import logging
import secrets
import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)

SESSION_KEY = "carnet_email_verification"
MAX_TRIES = 5
RESEND_SECONDS = 60
_SALT = "carnet.records.email_verification"


class EmailCodeRefused(ValidationError):
    """The code is wrong, expired or spent."""


def _digest(purpose: str, email: str, code: str) -> str:
    return salted_hmac(_SALT, f"{purpose}:{email.lower()}:{code}", algorithm="sha256").hexdigest()


def pending_email(request: HttpRequest, purpose: str) -> str | None:
    data = request.session.get(SESSION_KEY)
    if not data or data.get("purpose") != purpose:
        return None
    email: str = data["email"]
    return email


def send_email_code(request: HttpRequest, email: str, *, purpose: str, language: str | None = None) -> bool:
    """Send a fresh code to ``email``; False (nothing sent) if one went to it less than a minute ago."""
    now = int(timezone.now().timestamp())
    data = request.session.get(SESSION_KEY) or {}
    if data.get("purpose") == purpose and data.get("email") == email and now - data.get("sent", 0) < RESEND_SECONDS:
        return False
    code = f"{secrets.randbelow(1_000_000):06d}"
    validity = settings.OTP_EMAIL_TOKEN_VALIDITY
    request.session[SESSION_KEY] = {
        "purpose": purpose,
        "email": email,
        "digest": _digest(purpose, email, code),
        "until": now + validity,
        "sent": now,
        "tries": 0,
    }
    context = {"code": code, "minutes": max(1, validity // 60)}
    with translation.override(language or translation.get_language() or settings.LANGUAGE_CODE):
        subject = render_to_string("patients/email/verify_email_subject.txt", context).strip()
        body = render_to_string("patients/email/verify_email_body.txt", context)
    try:
        send_mail(subject, body, None, [email])
    except (smtplib.SMTPException, OSError):
        logger.warning("E-mail verification code could not be sent (purpose %s).", purpose, exc_info=True)
        raise
    return True


def check_email_code(request: HttpRequest, code: str, *, purpose: str) -> str:
    """The verified address if ``code`` is right; ``EmailCodeRefused`` otherwise (the code is spent on success)."""
    data = request.session.get(SESSION_KEY)
    code = "".join((code or "").split())
    if not data or data.get("purpose") != purpose:
        raise EmailCodeRefused(_("Demandez d'abord l'envoi d'un code."), code="no_code")
    if data["tries"] >= MAX_TRIES:
        raise EmailCodeRefused(_("Trop de codes erronés : demandez un nouveau code."), code="too_many_tries")
    if data["until"] < timezone.now().timestamp():
        raise EmailCodeRefused(_("Ce code a expiré : demandez un nouveau code."), code="expired")
    if not constant_time_compare(_digest(purpose, data["email"], code), data["digest"]):
        data["tries"] += 1
        request.session[SESSION_KEY] = data
        raise EmailCodeRefused(_("Code incorrect. Vérifiez le dernier courriel reçu."), code="wrong_code")
    request.session.pop(SESSION_KEY, None)
    email: str = data["email"]
    return email
