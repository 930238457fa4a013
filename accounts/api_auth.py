"""How the REST and FHIR doors know who is calling.

Bearer tokens, verified portal sessions, throttles, and the permissions by kind of account. The tokens
themselves (create, verify, revoke) are the kernel's ``access_control.tokens``; this module is the DRF side of
them, configured in ``REST_FRAMEWORK`` (``config.settings``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from access_control.models import ApiToken
from access_control.tokens import KEYWORD, verify_token
from access_control.trail import attest_assurance
from accounts.auth import client_address, provider_sign_in, session_is_current
from accounts.jwt_tokens import ProviderToken
from plumbing.cache import hit
from records.models import User

if TYPE_CHECKING:  # DRF's settings import this module: importing its views here would be circular
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.request import Request
    from rest_framework.views import APIView


class TokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer carnet_…``. No header: not this class's business (the session may apply)."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        # The header as a str (DRF's helper would fail on a character outside latin-1: a 500, not a 401).
        header = str(request.META.get("HTTP_AUTHORIZATION", "")).split()
        if not header or header[0].lower() != KEYWORD.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("En-tête d'autorisation invalide."), code="invalid_token")
        secret = header[1] if header[1].isascii() else ""
        token = verify_token(secret, client_address=client_address(request))
        if token is None:
            # A refused token is an anonymous call: counted per address, so guessing cannot flood the database.
            throttle = RefusedTokenThrottle()
            if not throttle.allow_request(request, None):  # type: ignore[arg-type]  # no view yet: authenticating
                raise exceptions.Throttled(wait=throttle.wait())
            raise exceptions.AuthenticationFailed(_("Jeton d'API invalide, expiré ou révoqué."), code="invalid_token")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="carnet"'


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """A portal session counts only when it passed its second factor and is current ("sign out everywhere")."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        django_request = request._request
        if not session_is_current(django_request) or not user.is_verified():
            return None
        attest_assurance(provider_sign_in(django_request).get("acr", ""))  # a PSC session's level, on the trail
        return result


def _rate(name: str) -> str:
    rate: str = getattr(settings, name)
    return rate


class CountedRateThrottle(throttling.SimpleRateThrottle):
    """DRF's rate throttle, counted per fixed window of the rate's period: one counter increment a request.

    ``SimpleRateThrottle`` keeps the time of every request of the period in the cache and reads and writes that
    whole list on each call: two round trips and a list as long as the allowance. Here the window's counter is
    incremented in one round trip (``plumbing.cache.hit``); the call is refused past the allowance, until the
    window ends (``Retry-After``). As with any fixed window, up to twice the allowance can pass across a window's
    boundary.
    """

    def __init__(self) -> None:
        super().__init__()
        allowance, period = self.parse_rate(self.rate)
        self.allowance: int | None = allowance
        self.period: int = period or 1
        self.wait_seconds = 0.0

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.allowance is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = float(self.timer())
        window = int(now // self.period)
        self.wait_seconds = (window + 1) * self.period - now
        return hit(self.cache, f"{key}:{window}", self.period) <= self.allowance

    def wait(self) -> float:
        return self.wait_seconds


class TokenRateThrottle(CountedRateThrottle):
    """Per token (or per account for a session), with the cache: ``CARNET_API_TOKEN_RATE``."""

    scope = "api_token"

    def get_rate(self) -> str:
        return _rate("CARNET_API_TOKEN_RATE")

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        ident = f"t{request.auth.pk}" if isinstance(request.auth, ApiToken) else f"u{request.user.pk}"
        return f"carnet:throttle:{self.scope}:{ident}"


class AddressRateThrottle(CountedRateThrottle):
    """Anonymous calls per client address: ``CARNET_API_ADDRESS_RATE``.

    Authenticated calls are counted per token or account (``TokenRateThrottle``) only: practice software in a
    hospital behind one NAT shares one address, and must not exhaust each other's allowance.
    """

    scope = "api_address"

    def get_rate(self) -> str:
        return _rate("CARNET_API_ADDRESS_RATE")

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.address_key(request)

    def address_key(self, request: Request) -> str:
        return f"carnet:throttle:{self.scope}:{self.get_ident(request)}"

    def get_ident(self, request: Request) -> str:
        # accounts.auth.client_address, as everywhere in Carnet: DRF's default would trust any client-supplied
        # X-Forwarded-For, and each forged value would get a fresh allowance.
        return client_address(request) or "unknown"


class RefusedTokenThrottle(AddressRateThrottle):
    """The address allowance, spent by a refused token (called during authentication: no ``request.user``)."""

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.address_key(request)


class TokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # drf-spectacular: unannotated
    """The token in the OpenAPI schema (drf-spectacular finds extensions once this module is imported)."""

    target_class = TokenAuthentication
    name = "token"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "carnet_…"}


class SessionScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # drf-spectacular: unannotated
    target_class = VerifiedSessionAuthentication
    name = "session"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


# --- Permissions ----------------------------------------------------------------------------------------


class _Kind(permissions.BasePermission):
    kind = ""
    message = _("Ce compte n'a pas accès à cette partie de l'API.")
    code = "wrong_account_kind"

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.kind == self.kind and self.check(request, user))

    def check(self, request: Request, user: User) -> bool:
        return True


class IsPractitioner(_Kind):
    """An active practitioner (``request.practitioner`` is set). Staff and patients: 403."""

    kind = User.Kind.PRACTITIONER

    def check(self, request: Request, user: User) -> bool:
        practitioner = getattr(user, "practitioner", None)
        if practitioner is None or not practitioner.is_active:
            return False
        request.practitioner = practitioner  # type: ignore[attr-defined]  # what the practitioner API's views read
        return True


class IsPatient(_Kind):
    """A patient with a profile (the holder, possibly also a legal representative, L10). Staff: 403."""

    kind = User.Kind.PATIENT

    def check(self, request: Request, user: User) -> bool:
        return getattr(user, "profile", None) is not None


READ = ApiToken.Scope.READ
WRITE = ApiToken.Scope.WRITE


def required_scope(view: APIView, method: str | None) -> str:
    """The token scope that ``method`` on ``view`` needs.

    The view's declared ``required_scope`` (a scope, or a dict method -> scope), else ``read`` for
    GET/HEAD/OPTIONS and ``write`` for anything else.

    One meaning on every door (REST and FHIR, docs/api.md "Token scopes"): ``read`` finds a patient (A11), opens
    and consults a record (A1, A7, traced and notified), lists and reads documents and trails; ``write`` also
    deposits, releases holds and changes anything (masks, blocks, grants, preferences). Finding and opening are
    POSTs in the REST API (no NIR in a URL; an opening is an event), so those views declare ``read``.
    """
    declared = getattr(view, "required_scope", None)
    if isinstance(declared, dict):
        declared = declared.get(method)
    if declared:
        scope: str = declared
        return scope
    return READ if method in permissions.SAFE_METHODS else WRITE


class TokenScope(permissions.BasePermission):
    """A ``read`` token may do what ``required_scope`` calls reading; the rest needs a ``write`` token.

    A Pro Santé Connect token has the scope its ``carnet:read`` / ``carnet:write`` grants
    (``accounts.jwt_tokens``). A verified portal session has every scope (its sensitive operations ask the step-up
    instead).
    """

    message = _("Ce jeton ne donne que le droit de lecture.")
    code = "insufficient_scope"

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not isinstance(request.auth, ApiToken | ProviderToken):  # a PSC token has the same scopes
            return True
        return request.auth.scope == WRITE or required_scope(view, request.method) == READ


PRACTITIONER = [IsPractitioner, TokenScope]
PATIENT = [IsPatient, TokenScope]
