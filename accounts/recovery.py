"""Getting back into an account: a forgotten password, a lost second factor, and the staff desk's lock-outs.

Forgotten password (patients and practitioners), three steps kept in the session (``RECOVERY_SESSION_KEY``):

1. the identifier (e-mail address, or RPPS for practitioners). The answer is the same whether an account
   exists or not; a code is e-mailed only when it does (``do_request_recovery``). Each request counts against
   the account and the client address like a failed sign-in (``plumbing.throttling``), so the form cannot be
   used to flood a mailbox. The code (8 digits) is kept as an HMAC in the cache under the account, valid
   ``CARNET_RECOVERY_SECONDS``: a new request replaces it (the previous one stops working), a right answer
   spends it, ``MAX_TRIES`` wrong answers void it;
2. the second factor: the authenticator app or a backup code. A patient without an authenticator app signs in
   with e-mailed codes, so the e-mailed recovery code already was their second factor;
3. a new password (Django's validators). Every session of the account ends, and its failure counter is cleared.

Lost second factor: a patient asks, with their NIR and birth date, for a new provisional code sent by post
(the pre-opening letter of L1, reworded for an active profile); with it, the birth date and a new password,
their authenticator app and backup codes are removed: they sign in again with e-mailed codes and may enrol a
new app. A practitioner calls the staff desk, whose agent resets their second factor
(``do_reset_second_factor``): they enrol a new app at their next sign-in. Each is traced (T1).
"""

import logging
import secrets
import smtplib
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from access_control.models import TrailEntry
from access_control.rules import Action, Reason
from access_control.trail import record_entry
from accounts.auth import Door, client_address, end_all_sessions, refuse_if_closed
from accounts.second_factors import confirmed_totp_device
from notifications.models import Notice
from notifications.outbox import queue_notice
from plumbing.throttling import SignInGate, account_name, clear_account
from records import crypto, lifecycle
from records.actors import Actor
from records.identifiers import normalize_nir
from records.models import Profile, User

logger = logging.getLogger(__name__)

RECOVERY_SESSION_KEY = "carnet_recovery"
MAX_TRIES = 5
CODE_DIGITS = 8
LETTER_INTERVAL_SECONDS = 24 * 3600  # one recovery letter a day per profile, whoever asks
_SALT = "carnet.accounts.recovery"

CODE_REFUSED = _("Code incorrect ou expiré. Vous pouvez demander un nouveau code.")
POSTAL_REFUSED = _("Les informations saisies ne permettent pas de retrouver votre espace. Vérifiez-les.")


class Step:
    CODE = "code"
    SECOND_FACTOR = "second_factor"
    PASSWORD = "password"  # noqa: S105  # a step's name, not a password


class RecoveryRefused(ValidationError):
    """A recovery step refused, with the message to show."""


# --- Accounts and counters -------------------------------------------------------------------------------


def find_account(door: str, identifier: str) -> User | None:
    """The account an identifier names at a door (the same rules as sign-in), or None."""
    identifier = identifier.strip()
    if door == Door.PATIENT:
        accounts = User.objects.filter(email__iexact=identifier, kind=User.Kind.PATIENT, profile__isnull=False)
    else:
        accounts = User.objects.filter(kind=User.Kind.PRACTITIONER, practitioner__isnull=False)
        if identifier.isdigit():
            accounts = accounts.filter(practitioner__rpps=identifier)
        else:
            accounts = accounts.filter(email__iexact=identifier)
    return accounts.filter(is_active=True).order_by("pk").first()


def _gate(request: HttpRequest, *, scope: str, user_id: int | None, identifier: str) -> SignInGate:
    # Recovery has counters of its own: asking for a code must not lock the account's sign-in, nor the reverse.
    account = account_name(user_id=None, door=f"recovery-{scope}", identifier=str(user_id or identifier))
    return SignInGate(account=account, address=client_address(request))


def _code_key(user_id: int) -> str:
    return f"carnet:recovery-code:{user_id}"


def _digest(user_id: int, nonce: str, code: str) -> str:
    return salted_hmac(_SALT, f"{user_id}:{nonce}:{code}", algorithm="sha256").hexdigest()


def _trail(user: User, action: str, actor: Actor | None, *, reason: str = "", address: str | None = None) -> TrailEntry:
    profile = getattr(user, "profile", None) if user.kind == User.Kind.PATIENT else None
    detail = "" if profile is not None else f"user {user.pk}"
    return record_entry(
        profile=profile, action=action, actor=actor, reason=reason, detail=detail, client_address=address
    )


# --- Forgotten password ----------------------------------------------------------------------------------


def do_request_recovery(request: HttpRequest, *, door: str, identifier: str, actor: Actor | None = None) -> None:
    """Step 1: e-mail a recovery code if ``identifier`` names an account at ``door``; the same outcome if not.

    Throttled (``SignInRefused`` "throttled" once closed). The code, never stored in clear, replaces any earlier
    one. ``actor`` is None: whoever asks is not signed in.
    """
    user = find_account(door, identifier)
    gate = _gate(request, scope=door, user_id=user.pk if user else None, identifier=identifier)
    refuse_if_closed(gate)
    gate.record_failure()  # every request counts: the form must not be a way to flood a mailbox
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    nonce = secrets.token_hex(8)
    # The digest is computed for unknown accounts too: both paths do the same work before the e-mail.
    digest = _digest(user.pk if user else 0, nonce, code)
    validity = settings.CARNET_RECOVERY_SECONDS
    request.session[RECOVERY_SESSION_KEY] = {
        "door": str(door),
        "user": user.pk if user else None,
        "step": Step.CODE,
        "until": int(timezone.now().timestamp()) + validity,
    }
    if user is None:
        logger.info("Recovery asked at the %s door for no account.", door)
        return
    cache.set(_code_key(user.pk), {"nonce": nonce, "digest": digest, "tries": 0}, timeout=validity)
    _send_code(user, code, validity)
    logger.info("Recovery code sent to user %s.", user.pk)


def _send_code(user: User, code: str, validity: int) -> None:
    context = {"code": code, "minutes": max(1, validity // 60)}
    with translation.override(getattr(user, "preferred_language", None) or settings.LANGUAGE_CODE):
        subject = render_to_string("registration/recovery_code_subject.txt", context).strip()
        body = render_to_string("registration/recovery_code_email.txt", context)
    try:
        send_mail(subject, body, None, [user.email])
    except (smtplib.SMTPException, OSError):
        logger.warning("Recovery code e-mail to user %s failed.", user.pk, exc_info=True)
        raise


def pending_recovery(request: HttpRequest, door: str, step: str) -> dict[str, Any] | None:
    """The session's recovery at ``door`` when it is at ``step`` and not expired, else None."""
    data = request.session.get(RECOVERY_SESSION_KEY)
    if not data or data.get("door") != door or data.get("step") != step:
        return None
    if data.get("until", 0) < timezone.now().timestamp():
        return None
    pending: dict[str, Any] = data
    return pending


def recovery_user(data: dict[str, Any]) -> User | None:
    return User.objects.filter(pk=data["user"], is_active=True).first() if data.get("user") else None


def needs_second_factor(user: User) -> bool:
    """Whether step 2 asks for a code: not for a patient whose second factor is the e-mail itself."""
    return user.kind != User.Kind.PATIENT or confirmed_totp_device(user) is not None


def check_recovery_code(request: HttpRequest, data: dict[str, Any], code: str) -> str:
    """Step 1's answer: spends the e-mailed code and moves the session on; returns the next step."""
    user = recovery_user(data)
    # Without an account, the counter is the session's: it behaves like an account's, and locks nobody else.
    gate = _gate(request, scope="code", user_id=data.get("user"), identifier=request.session.session_key or "")
    refuse_if_closed(gate)
    code = "".join((code or "").split()).replace("-", "")
    stored = cache.get(_code_key(user.pk)) if user is not None else None
    right = False
    if user is not None and stored is not None and stored["tries"] < MAX_TRIES:
        right = constant_time_compare(_digest(user.pk, stored["nonce"], code), stored["digest"])
    if not right:
        gate.record_failure()
        if stored is not None and user is not None:
            stored["tries"] += 1
            cache.set(_code_key(user.pk), stored, timeout=settings.CARNET_RECOVERY_SECONDS)
        raise RecoveryRefused(CODE_REFUSED, code="wrong_code")
    assert user is not None  # right implies an account
    cache.delete(_code_key(user.pk))  # single use
    data["step"] = Step.SECOND_FACTOR if needs_second_factor(user) else Step.PASSWORD
    request.session[RECOVERY_SESSION_KEY] = data
    step: str = data["step"]
    return step


def second_factor_passed(request: HttpRequest, data: dict[str, Any]) -> None:
    data["step"] = Step.PASSWORD
    request.session[RECOVERY_SESSION_KEY] = data


def do_reset_password(request: HttpRequest, user: User, password: str, *, actor: User) -> None:
    """Step 3: the new password (already validated by the form); ends every session and clears lock-outs."""
    if actor.pk != user.pk:
        raise PermissionDenied
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.set_password(password)
        user.save(update_fields=["password"])
        _trail(user, Action.PASSWORD_RESET, actor, address=client_address(request))
    request.session.pop(RECOVERY_SESSION_KEY, None)
    end_all_sessions(user.pk)
    clear_account(account_name(user_id=user.pk, door="", identifier=""))
    logger.info("Password reset by recovery for user %s.", user.pk)


# --- Lost second factor: patients, by post ---------------------------------------------------------------


def do_request_recovery_letter(request: HttpRequest, *, nir: str, birth_date: date, actor: Actor | None = None) -> None:
    """Send a new provisional code by post to the holder of an active profile; the same outcome otherwise.

    Throttled per NIR and client address; at most one letter a day per profile. The letter is the L1
    pre-opening notice (``Notice.Kind.PRE_OPENING``), which speaks of recovery for an active profile.
    """
    nir = normalize_nir(nir or "")
    gate = _gate(request, scope="letter", user_id=None, identifier=nir)
    refuse_if_closed(gate)
    gate.record_failure()
    profile = Profile.objects.filter(
        nir=nir, birth_date=birth_date, state=Profile.State.ACTIVE, user__isnull=False
    ).first()
    if profile is None or not cache.add(f"carnet:recovery-letter:{profile.pk}", 1, LETTER_INTERVAL_SECONDS):
        logger.info("Recovery letter asked; none sent.")
        return
    code = lifecycle.generate_provisional_code()
    with transaction.atomic():
        profile = Profile.objects.select_for_update().get(pk=profile.pk)
        profile.provisional_code_hash = lifecycle.hash_provisional_code(code)
        profile.provisional_code_expires_at = lifecycle.provisional_code_expiry(timezone.now())
        profile.save(update_fields=["provisional_code_hash", "provisional_code_expires_at"])
        entry = record_entry(
            profile=profile, action=Action.RECOVERY_LETTER, actor=actor, client_address=client_address(request)
        )
        queue_notice(
            profile, Notice.Kind.PRE_OPENING, trail_entry=entry, sealed_payload=crypto.seal(code.encode("ascii"))
        )
    logger.info("Recovery letter queued for profile %s.", profile.pk)


def do_recover_with_provisional_code(
    request: HttpRequest,
    *,
    nir: str,
    birth_date: date,
    provisional_code: str,
    password: str,
    actor: Actor | None = None,
) -> User:
    """With the code of the recovery letter: a new password, and the lost second factor removed.

    One message whatever was wrong (no oracle). The patient then signs in with the password and an e-mailed
    code, and may enrol a new authenticator app.
    """
    nir = normalize_nir(nir or "")
    gate = _gate(request, scope="postal", user_id=None, identifier=nir)
    refuse_if_closed(gate)
    profile = Profile.objects.select_related("user").filter(nir=nir, state=Profile.State.ACTIVE).first()
    encoded = profile.provisional_code_hash if profile is not None else ""
    code_ok = lifecycle.provisional_code_matches(provisional_code, encoded)  # hashed even without a profile
    expires = profile.provisional_code_expires_at if profile is not None else None
    if (
        profile is None
        or profile.user is None
        or not code_ok
        or profile.birth_date != birth_date
        or expires is None
        or expires <= timezone.now()
    ):
        gate.record_failure()
        raise RecoveryRefused(POSTAL_REFUSED, code="invalid_credentials")
    user = profile.user
    validate_password(password, user)
    with transaction.atomic():
        locked = Profile.objects.select_for_update().get(pk=profile.pk)
        if not lifecycle.provisional_code_matches(provisional_code, locked.provisional_code_hash):
            raise RecoveryRefused(POSTAL_REFUSED, code="invalid_credentials")  # spent by a concurrent request
        locked.provisional_code_hash = ""
        locked.provisional_code_expires_at = None
        locked.save(update_fields=["provisional_code_hash", "provisional_code_expires_at"])
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        user.set_password(password)
        user.save(update_fields=["password"])
        record_entry(
            profile=locked,
            action=Action.SECOND_FACTOR_RESET,
            actor=user,
            reason=Reason.PROVISIONAL_CODE,
            client_address=client_address(request),
        )
    end_all_sessions(user.pk)
    clear_account(account_name(user_id=user.pk, door="", identifier=""))
    logger.info("Second factor reset with a provisional code for user %s.", user.pk)
    return user


# --- The staff desk -------------------------------------------------------------------------------------

LIFT_PERMISSION = "records.handle_counter_requests"
RESET_PERMISSION = "practitioners.suspend_practitioner"


def do_lift_lockout(user: User, *, actor: User) -> None:
    """Clear an account's sign-in failures (staff desk, ``LIFT_PERMISSION``); traced."""
    if not actor.has_perm(LIFT_PERMISSION):
        raise PermissionDenied
    with transaction.atomic():
        _trail(user, Action.LOCKOUT_LIFTED, actor, reason=Reason.STAFF_DESK)
    clear_account(account_name(user_id=user.pk, door="", identifier=""))
    logger.info("Sign-in lock-out of user %s lifted by user %s.", user.pk, actor.pk)


def do_reset_second_factor(user: User, *, actor: User) -> None:
    """A practitioner lost their authenticator app: remove it and their backup codes (``RESET_PERMISSION``).

    They enrol a new app at their next sign-in (the practitioner door asks for it when none is confirmed);
    their open sessions end. Traced in the profile-less chain, naming the staff member.
    """
    if not actor.has_perm(RESET_PERMISSION) or user.kind != User.Kind.PRACTITIONER:
        raise PermissionDenied
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        _trail(user, Action.SECOND_FACTOR_RESET, actor, reason=Reason.STAFF_DESK)
    end_all_sessions(user.pk)
    logger.info("Second factor of user %s reset by user %s.", user.pk, actor.pk)
