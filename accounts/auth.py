"""Sign-in for patients and practitioners, session checks, and the decorators that guard their pages.

A sign-in has two steps. The password step (throttled, see ``plumbing.throttling``; no account oracle) only
records a *pending* sign-in in the session: the user is not logged in yet, so ``request.user`` stays anonymous
and no view or API can mistake a half-signed-in user for a signed-in one. The second-factor step then calls
``django.contrib.auth.login`` and ``django_otp.login`` together (a verified session) and stamps the session
with the user's **session epoch**.

Sign out everywhere: each user has a session epoch, a counter on ``records.User`` (``session_epoch``); a
session is valid only while its stamp equals the user's current epoch. "Sign out everywhere" bumps the counter
with one conditional UPDATE, which invalidates every other session of the user at once, in O(1) (no password
change, no scan of ``django_session``). The check reads the user row the authentication middleware loads anyway:
no extra query, and no Redis, so sessions survive a Redis restart and signed-in pages keep working while Redis
is down (docs/architecture.md, "When Redis is down"). ``patient_required``, ``practitioner_required``, the API's
session authentication and the admin site check it.

The staff door is the Django admin behind django-otp (``accounts/admin_site.py``); it uses the same throttling
and session epoch.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from access_control.trail import attest_assurance
from accounts.second_factors import (
    CodeCheck,
    EnrolmentRefused,
    describe_refusal,
    device_for_code,
    do_confirm_totp_device,
    normalise_code,
    verify_code,
)
from plumbing.throttling import FailureGate, SignInGate, account_name
from practitioners.models import Practitioner
from records.models import User

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

logger = logging.getLogger(__name__)
# A view function: what the sign-in decorators take and give back.
View = Callable[..., HttpResponse]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PENDING_SESSION_KEY = "carnet_signin_pending"
EPOCH_SESSION_KEY = "carnet_session_epoch"
PROVIDER_SESSION_KEY = "carnet_provider_sign_in"  # provider, acr and ID token of a national sign-in
PENDING_SECONDS = 15 * 60  # time allowed between the password and the second factor
DEFAULT_PRACTITIONER_IDLE_SECONDS = 15 * 60

THROTTLED_MESSAGE = _("Trop de tentatives de connexion. Pour votre sécurité, réessayez dans quelques minutes.")
PATIENT_INVALID_MESSAGE = _("Adresse électronique ou mot de passe incorrect.")
PRACTITIONER_INVALID_MESSAGE = _("Identifiant ou mot de passe incorrect.")
SUSPENDED_MESSAGE = _(
    "Votre compte est suspendu. Pour en connaître la raison, contactez l'assistance de Carnet "
    "ou votre ordre professionnel."
)


class Door(StrEnum):
    PATIENT = "patient"
    PRACTITIONER = "practitioner"
    STAFF = "staff"


class SignInRefused(ValidationError):
    """A sign-in step refused, with the message to show."""


def refuse_if_closed(gate: FailureGate) -> None:
    """Refuse at once when the gate is closed; the refusal carries the ``Retry-After`` seconds (``retry_after``)."""
    wait = gate.retry_after()
    if wait:
        raise SignInRefused(THROTTLED_MESSAGE, code="throttled", params={"retry_after": wait})


def retry_after(error: ValidationError) -> int:
    """The seconds a throttled refusal asks to wait (0 for any other error), from a form's ``errors.as_data()``."""
    for item in error.error_list if hasattr(error, "error_list") else [error]:
        if item.code == "throttled" and item.params:
            return int(item.params.get("retry_after", 0))
    return 0


@functools.lru_cache(maxsize=4)
def _networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _parse_address(value: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_address(request: HttpRequest) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or behind a trusted proxy the hop it reports in X-Forwarded-For.

    ``X-Forwarded-For`` is believed only when it comes from ``CARNET_TRUSTED_PROXIES``: its entries are walked
    from the right (each proxy appends the address it saw), trusted proxies are skipped, and the first other
    address is the client. Anything left of it was written by the client and could be forged, so it is never
    read. Every throttle and every trail entry takes its address from here.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    networks = _networks(tuple(settings.CARNET_TRUSTED_PROXIES))
    seen = _parse_address(remote) if remote else None
    if seen is None or not networks or not _trusted(seen, networks):
        return remote
    for hop in reversed(str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")):
        address = _parse_address(hop)
        if address is None:
            break  # not an address where a proxy wrote one: keep the last hop we could trust
        seen = address
        if not _trusted(address, networks):
            break
    return str(seen)


def safe_next(request: HttpRequest, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next")
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


# --- Password step ------------------------------------------------------------------------------------


def _check_password(
    request: HttpRequest, *, door: Door, identifier: str, candidates: list[User], password: str, message: StrOrPromise
) -> User:
    """Throttle, then check the password; unknown accounts cost the same hashing work as known ones."""
    account = account_name(user_id=candidates[0].pk if candidates else None, door=door, identifier=identifier)
    gate = SignInGate(account=account, address=client_address(request))
    refuse_if_closed(gate)
    user = None
    for candidate in candidates:
        user = authenticate(request, username=candidate.get_username(), password=password)
        if user is not None:
            break
    if not candidates:
        User().set_password(password)  # as ModelBackend does for an unknown username
    if user is None:
        gate.record_failure()
        logger.info("Sign-in refused at the %s door (bad credentials).", door)
        raise SignInRefused(message, code="invalid_login")
    return user


def check_patient_password(request: HttpRequest, email: str, password: str) -> User:
    """A patient signs in with their e-mail address (case-insensitive) and password."""
    email = email.strip()
    candidates = list(
        User.objects.filter(email__iexact=email, kind=User.Kind.PATIENT, profile__isnull=False).order_by("pk")[:5]
    )
    return _check_password(
        request,
        door=Door.PATIENT,
        identifier=email,
        candidates=candidates,
        password=password,
        message=PATIENT_INVALID_MESSAGE,
    )


def check_practitioner_password(request: HttpRequest, identifier: str, password: str) -> User:
    """A practitioner signs in with their RPPS number or their account's e-mail address, and password.

    A suspended practitioner is told so, but only after the right password: the message then reveals
    nothing to someone who does not hold the account, and spares the practitioner a pointless password
    reset. Before the password is right, a suspended account looks like any other.
    """
    identifier = identifier.strip()
    accounts = User.objects.filter(kind=User.Kind.PRACTITIONER, practitioner__isnull=False)
    if identifier.isdigit():
        accounts = accounts.filter(practitioner__rpps=identifier)
    else:
        accounts = accounts.filter(email__iexact=identifier)
    user = _check_password(
        request,
        door=Door.PRACTITIONER,
        identifier=identifier,
        candidates=list(accounts.order_by("pk")[:5]),
        password=password,
        message=PRACTITIONER_INVALID_MESSAGE,
    )
    if not user.practitioner.is_active:
        logger.info("Sign-in refused for suspended practitioner user %s.", user.pk)
        raise SignInRefused(SUSPENDED_MESSAGE, code="suspended")
    return user


def staff_gate(request: HttpRequest, username: str) -> SignInGate:
    user_id = User.objects.filter(username=username).values_list("pk", flat=True).first()
    account = account_name(user_id=user_id, door=Door.STAFF, identifier=username)
    return SignInGate(account=account, address=client_address(request))


# --- Pending sign-in and second factor ----------------------------------------------------------------


def begin_pending_sign_in(request: HttpRequest, user: User, *, door: Door, next_url: str) -> None:
    """Remember that ``user`` passed the password step at ``door``; nobody is logged in yet."""
    # A new session key: a key planted beforehand (session fixation) must not see the enrolment secret.
    request.session.cycle_key()
    request.session.pop(PROVIDER_SESSION_KEY, None)  # a provider's sign-in sets it again after this
    request.session[PENDING_SESSION_KEY] = {
        "user": user.pk,
        "door": str(door),
        "backend": user.backend,  # type: ignore[attr-defined]  # set on the user by authenticate()
        "next": next_url,
        "until": int(timezone.now().timestamp()) + PENDING_SECONDS,
    }


def pending_user(request: HttpRequest, door: Door) -> User | None:
    data = request.session.get(PENDING_SESSION_KEY)
    if not data or data.get("door") != door or data.get("until", 0) < timezone.now().timestamp():
        return None
    return User.objects.filter(pk=data["user"], is_active=True).first()


def _user_gate(request: HttpRequest, user: User) -> SignInGate:
    return SignInGate(account=account_name(user_id=user.pk, door="", identifier=""), address=client_address(request))


def check_second_factor(
    request: HttpRequest, user: User, code: str, *, allow_email: bool, prefer_email: bool = False
) -> Device:
    """Verify a code (TOTP, e-mail code if allowed, or backup code) and return the device that took it."""
    gate = _user_gate(request, user)
    refuse_if_closed(gate)
    code = normalise_code(code)
    device = device_for_code(user, code, allow_email=allow_email, prefer_email=prefer_email)
    outcome = verify_code(device, code) if device is not None else CodeCheck.REFUSED
    if outcome != CodeCheck.ACCEPTED:
        if outcome == CodeCheck.REFUSED:
            gate.record_failure()
        raise SignInRefused(describe_refusal(outcome), code=str(outcome))
    return device


def confirm_enrolment(request: HttpRequest, user: User, device: TOTPDevice, code: str) -> list[str]:
    """Confirm a practitioner's new TOTP device with its first code (throttled like any code)."""
    gate = _user_gate(request, user)
    refuse_if_closed(gate)
    try:
        return do_confirm_totp_device(device, normalise_code(code), actor=user)
    except EnrolmentRefused as exc:
        if exc.outcome == CodeCheck.REFUSED:
            gate.record_failure()
        raise


def complete_sign_in(request: HttpRequest, user: User, device: Device, *, door: Door) -> str:
    """Log the user in with a verified device; returns where to go next."""
    data = request.session.pop(PENDING_SESSION_KEY, None) or {}
    provider = request.session.get(PROVIDER_SESSION_KEY)
    auth_login(request, user, backend=data.get("backend"))  # flushes the session if another user was in it
    if provider:
        request.session[PROVIDER_SESSION_KEY] = provider
    otp_login(request, device)
    stamp_session(request, user)
    if door == Door.PRACTITIONER:
        request.session.set_expiry(
            getattr(settings, "CARNET_PRACTITIONER_IDLE_SECONDS", DEFAULT_PRACTITIONER_IDLE_SECONDS)
        )
    _user_gate(request, user).record_success()
    logger.info("Sign-in completed at the %s door for user %s.", door, user.pk)
    return data.get("next") or "/"


# --- National providers (Pro Santé Connect, FranceConnect: accounts.oidc) --------------------------------

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def begin_provider_sign_in(
    request: HttpRequest,
    user: User,
    *,
    door: Door,
    provider: str,
    acr: str,
    id_token: str,
    strong: bool,
    next_url: str,
    logout_uri: str,
) -> str:
    """A sign-in attested by a national provider; returns where to go next.

    At a strong level (``strong``) the provider's attestation stands for the second factor: the session is logged
    in at once with the user's ``ProviderDevice``. Otherwise it is a pending sign-in, like after a password, and
    the door's second-factor page completes it. Either way the session keeps the provider, its level of
    assurance, the ID token and where the provider sends the browser back after single logout (``logout_uri``).
    Returns "" when the second factor is still to come.
    """
    from accounts.models import ProviderDevice

    user.backend = MODEL_BACKEND  # type: ignore[attr-defined]  # as authenticate() sets it
    begin_pending_sign_in(request, user, door=door, next_url=next_url)
    request.session[PROVIDER_SESSION_KEY] = {
        "provider": provider,
        "acr": acr,
        "id_token": id_token,
        "logout_uri": logout_uri,
    }
    if not strong:
        logger.info("Sign-in at the %s door by %s (level %s): second factor required.", door, provider, acr)
        return ""
    device, _created = ProviderDevice.objects.get_or_create(
        user=user, provider=provider, defaults={"name": provider, "confirmed": True}
    )
    logger.info("Sign-in at the %s door by %s at a strong level (%s).", door, provider, acr)
    return complete_sign_in(request, user, device, door=door)


def provider_sign_in(request: HttpRequest) -> dict[str, str]:
    """The provider, level of assurance and ID token of this session's sign-in (empty after a password)."""
    data: dict[str, str] = request.session.get(PROVIDER_SESSION_KEY) or {}
    return data


# --- Session epoch ("sign out everywhere") ------------------------------------------------------------


def current_epoch(user_id: int) -> int:
    """The user's session epoch (see the module docstring)."""
    return User.objects.filter(pk=user_id).values_list("session_epoch", flat=True).get()


def stamp_session(request: HttpRequest, user: User) -> None:
    """Bind the session to the user's current epoch (called at each completed sign-in)."""
    # Read again: ``user`` may have been loaded before an end_all_sessions() of this same request.
    user.session_epoch = current_epoch(user.pk)
    request.session[EPOCH_SESSION_KEY] = user.session_epoch


def session_is_current(request: HttpRequest) -> bool:
    """Whether the signed-in user's session carries their current epoch.

    ``request.user`` was read from the database by the authentication middleware: this costs no query.
    """
    if not request.user.is_authenticated:
        return False
    stamp = request.session.get(EPOCH_SESSION_KEY)
    # Sessions stamped before the epoch moved to the database hold a string: they are over (sign in again).
    return type(stamp) is int and stamp == request.user.session_epoch


def end_all_sessions(user_id: int) -> None:
    """End every session of a user at once (new password, second factor reset): bump their epoch."""
    User.objects.filter(pk=user_id).update(session_epoch=F("session_epoch") + 1)


def sign_out_everywhere(request: HttpRequest) -> None:
    """End every session of the current user, this one included."""
    user_id = request.user.pk
    end_all_sessions(user_id)  # type: ignore[arg-type]  # a signed-in user: the pk is set
    auth_logout(request)
    logger.info("User %s signed out everywhere.", user_id)


# --- Decorators ---------------------------------------------------------------------------------------


def _verified_user(request: HttpRequest, kind: str) -> User | None:
    user = request.user
    if not user.is_authenticated:
        return None
    if not session_is_current(request):
        auth_logout(request)  # signed out everywhere, or the epoch was lost: this session is over
        return None
    if not user.is_verified() or user.kind != kind:  # type: ignore[attr-defined]  # django_otp's middleware adds it
        return None
    return user


def patient_required(view: View) -> View:
    """A patient with a verified second factor, a current session and a profile (``request.profile``)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = _verified_user(request, User.Kind.PATIENT)
        profile = getattr(user, "profile", None) if user is not None else None
        if profile is None:
            return redirect_to_login(request.get_full_path(), reverse("patients:login"))
        request.profile = profile  # type: ignore[attr-defined]  # what the patient door's views read
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    return wrapper


def practitioner_required(view: View) -> View:
    """An active practitioner, verified by TOTP or a backup code, current session (``request.practitioner``)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = _verified_user(request, User.Kind.PRACTITIONER)
        practitioner = None
        if user is not None:
            practitioner = Practitioner.objects.select_related("profession").filter(user=user).first()
        if practitioner is None or not practitioner.is_active:
            if practitioner is not None:
                auth_logout(request)  # suspended during the session (the login page will say so)
            return redirect_to_login(request.get_full_path(), reverse("practitioners:login"))
        request.practitioner = practitioner  # type: ignore[attr-defined]  # what the practitioner door's views read
        attest_assurance(provider_sign_in(request).get("acr", ""))  # on the trail entries of this request
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    return wrapper
