"""Second factors (django-otp devices) for the sign-in doors.

- TOTP (``otp_totp.TOTPDevice``): mandatory for practitioners, enrolled at their first sign-in; optional for
  patients (enrolled at activation, L4). django-otp refuses a code of an already used time step (``last_t``).
- E-mail code (``otp_email.EmailDevice``): patients without a confirmed TOTP device; 6 digits, valid
  ``OTP_EMAIL_TOKEN_VALIDITY`` seconds (600), one new code a minute at most (django-otp cooldown).
- Backup codes (``otp_static.StaticDevice``): ten single-use codes issued with the TOTP enrolment.

Every check runs under a row lock on the device (django-otp's throttling: 1, 2, 4… seconds after each wrong
code). A 6-digit code goes to the primary device (TOTP, else e-mail), anything else to the backup codes, so a
mistyped code never counts against a device the user did not mean to use.
"""

import base64
import logging
import smtplib
from enum import StrEnum
from typing import TYPE_CHECKING

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device
from django_otp.plugins.otp_email.models import EmailDevice
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from records.models import User

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

logger = logging.getLogger(__name__)

BACKUP_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Application d'authentification"
EMAIL_DEVICE_NAME = "Courriel"
BACKUP_DEVICE_NAME = "Codes de secours"


class CodeCheck(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    LOCKED = "locked"  # django-otp's own throttling: too many wrong codes, wait a moment


def describe_refusal(outcome: CodeCheck) -> "StrOrPromise":
    if outcome == CodeCheck.LOCKED:
        return _("Trop de codes erronés : patientez quelques secondes avant de réessayer.")
    return _("Code incorrect ou expiré.")


class EnrolmentRefused(ValidationError):
    """The first TOTP code did not match (or the device is throttled): nothing was confirmed."""

    def __init__(self, outcome: CodeCheck):
        super().__init__(describe_refusal(outcome), code=str(outcome))
        self.outcome = outcome


def normalise_code(code: str) -> str:
    """The one form of a code every door checks: no spaces or dashes, lower case ("DEMO-0001" = "demo0001").

    Backup codes are printed and read aloud in groups; the patient, practitioner and staff doors all pass what
    was typed through here before choosing the device.
    """
    return "".join(code.split()).replace("-", "").replace("‐", "").replace("‑", "").lower()


def is_primary_code(code: str) -> bool:
    return len(code) == 6 and code.isdigit()


def confirmed_totp_device(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def backup_device(user: User) -> StaticDevice | None:
    return StaticDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def email_device(user: User) -> EmailDevice:
    device = EmailDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is None:
        device = EmailDevice.objects.create(user=user, name=EMAIL_DEVICE_NAME, confirmed=True)
    return device


def device_for_code(user: User, code: str, *, allow_email: bool, prefer_email: bool = False) -> Device | None:
    """The one device a (normalised) code is meant for, or None when the user has no such device.

    Six digits go to the authenticator app, or to the e-mailed code when the user has no app or asked for an
    e-mailed code instead (``prefer_email``); anything else is a backup code.
    """
    if is_primary_code(code):
        totp = confirmed_totp_device(user)
        if allow_email and (totp is None or prefer_email):
            return email_device(user)
        return totp
    return backup_device(user)


def verify_code(device: Device, code: str) -> CodeCheck:
    """Check a code against one device under a row lock; a wrong code is counted by django-otp."""
    with transaction.atomic():
        locked = type(device).objects.select_for_update().get(pk=device.pk)
        allowed, _info = locked.verify_is_allowed()
        if not allowed:
            return CodeCheck.LOCKED
        accepted = locked.verify_token(code)
    return CodeCheck.ACCEPTED if accepted else CodeCheck.REFUSED


def send_sign_in_code(user: User) -> bool:
    """E-mail a fresh 6-digit code to a patient. False when one was sent less than a minute ago.

    The code row is committed before the message leaves (no e-mail inside a transaction); the message
    carries the code only, no health information.
    """
    device = email_device(user)
    with transaction.atomic():
        device = EmailDevice.objects.select_for_update().get(pk=device.pk)
        allowed, _info = device.generate_is_allowed()
        if not allowed:
            return False
        device.cooldown_set(commit=False)
        device.generate_token(length=6, valid_secs=settings.OTP_EMAIL_TOKEN_VALIDITY, commit=False)
        device.save(update_fields=["token", "valid_until", "last_generated_timestamp"])
    minutes = max(1, settings.OTP_EMAIL_TOKEN_VALIDITY // 60)
    with translation.override(getattr(user, "preferred_language", None) or settings.LANGUAGE_CODE):
        context = {"code": device.token, "minutes": minutes}
        subject = render_to_string("registration/sign_in_code_subject.txt", context).strip()
        body = render_to_string("registration/sign_in_code_email.txt", context)
    try:
        send_mail(subject, body, None, [device.email or user.email])
    except (smtplib.SMTPException, OSError):
        logger.warning("Sign-in code e-mail to user %s failed.", user.pk, exc_info=True)
        raise
    return True


def unconfirmed_totp_device(user: User) -> TOTPDevice:
    """The TOTP device being enrolled (created on first use, kept until confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def do_confirm_totp_device(device: TOTPDevice, code: str, *, actor: User) -> list[str]:
    """Confirm an enrolled TOTP device with its first code and issue fresh backup codes.

    Returns the backup codes, to be shown once. A wrong code raises ``EnrolmentRefused`` and confirms
    nothing (django-otp still counts the failure against the device).
    """
    with transaction.atomic(durable=True):
        locked = TOTPDevice.objects.select_for_update().filter(pk=device.pk, user=actor, confirmed=False).first()
        if locked is None:  # confirmed meanwhile (double submission) or not this user's
            raise EnrolmentRefused(CodeCheck.REFUSED)
        allowed, _info = locked.verify_is_allowed()
        outcome = CodeCheck.LOCKED
        if allowed:
            outcome = CodeCheck.ACCEPTED if locked.verify_token(code) else CodeCheck.REFUSED
        if outcome == CodeCheck.ACCEPTED:
            locked.confirmed = True
            locked.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=actor, confirmed=False).delete()
            codes = do_issue_backup_codes(actor, actor=actor, durable=False)
    if outcome != CodeCheck.ACCEPTED:
        raise EnrolmentRefused(outcome)
    logger.info("TOTP device confirmed for user %s.", actor.pk)
    device.refresh_from_db()
    return codes


def do_issue_backup_codes(user: User, *, actor: User, durable: bool = True) -> list[str]:
    """Replace the user's backup codes with ten new single-use ones; returns them (shown once)."""
    with transaction.atomic(durable=durable):
        StaticDevice.objects.select_for_update().filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    logger.info("Backup codes issued for user %s by user %s.", user.pk, actor.pk)
    return codes


def remaining_backup_codes(user: User) -> int:
    count: int = StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
    return count


def totp_secret(device: TOTPDevice) -> str:
    """The base32 secret for manual entry, in groups of four characters."""
    secret = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def totp_qr_data_uri(device: TOTPDevice) -> str:
    """The otpauth:// URL as an SVG QR code in a data URI (CSP allows ``img-src data:``)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    svg = image.to_string(encoding="utf-8")
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
