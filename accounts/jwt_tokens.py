"""Pro Santé Connect access tokens on the REST and FHIR APIs: a bearer JWT checked against PSC's JWKS.

The token's signature is checked with the provider's published keys (``jwks_uri`` of its discovery document),
then its issuer, audience (``CARNET_PSC_API_AUDIENCE``), expiry and scopes. The keys are cached per process: they
are fetched again when the cache is older than ``CARNET_PSC_JWKS_MAX_AGE_SECONDS``, or when a token names a key
the cache does not hold (the provider rotated its keys) — at once for the first such token, then at most once
per ``CARNET_PSC_JWKS_REFETCH_SECONDS``, so tokens with made-up key ids cannot make Carnet hammer the provider.

The token maps to the practitioner by the RPPS in its national id (``accounts.psc``) and carries Carnet's
scopes as ``carnet:read`` / ``carnet:write``: the same scopes and rules as Carnet's own tokens
(``accounts.api_auth.TokenScope``). Carnet's own static tokens (``carnet_…``) are left to ``TokenAuthentication``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from rest_framework import authentication, exceptions

from access_control.models import ApiToken
from access_control.tokens import KEYWORD
from access_control.trail import attest_assurance
from accounts import oidc
from accounts.psc import PractitionerRefused, practitioner_account
from records.models import User

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema
    from rest_framework.request import Request

logger = logging.getLogger(__name__)

SCOPES = {"carnet:write": ApiToken.Scope.WRITE, "carnet:read": ApiToken.Scope.READ}  # strongest first
ALGORITHMS = ["RS256", "PS256", "ES256"]


class TokenRefused(Exception):
    """The bearer JWT is not a valid PSC access token for Carnet (``reason``: a word for logs and tests)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Keys:
    key_set: KeySet
    fetched_at: float  # time.monotonic()
    refetched_at: float | None = None  # the last refetch for an unknown key id


@dataclass
class JwksCache:
    """The provider's keys, per JWKS URL, with a floor on how often an unknown key id refetches them."""

    fetches: int = 0  # how many times the keys were fetched (the tests read it)
    _keys: dict[str, _Keys] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def key_set(self, uri: str, *, max_age: int, refetch_floor: int, unknown_kid: bool, timeout: int) -> KeySet:
        with self._lock:
            now = time.monotonic()
            cached = self._keys.get(uri)
            refetch = unknown_kid and (
                cached is None or cached.refetched_at is None or now - cached.refetched_at >= refetch_floor
            )
            if cached is not None and now - cached.fetched_at < max_age and not refetch:
                return cached.key_set
            response = requests.get(uri, timeout=timeout)
            response.raise_for_status()
            self.fetches += 1
            previous = cached.refetched_at if cached is not None else None
            fresh = _Keys(KeySet.import_key_set(response.json()), now, now if unknown_kid else previous)
            self._keys[uri] = fresh
            return fresh.key_set

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self.fetches = 0


JWKS = JwksCache()


def accepts_psc_tokens() -> bool:
    """PSC tokens are accepted on the API once PSC is configured with the API's audience."""
    return oidc.is_configured(oidc.Provider.PSC) and bool(oidc.provider_settings(oidc.Provider.PSC)["api_audience"])


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and not value.startswith("carnet_")


def verify_access_token(value: str) -> dict[str, Any]:
    """The claims of a valid PSC access token for Carnet's API, or ``TokenRefused``."""
    config = oidc.provider_settings(oidc.Provider.PSC)
    try:
        metadata = oidc.client(oidc.Provider.PSC).load_server_metadata()
        options = {
            "uri": metadata["jwks_uri"],
            "max_age": config["jwks_max_age_seconds"],
            "refetch_floor": config["jwks_refetch_seconds"],
            "timeout": config["timeout"],
        }
        try:
            token = jwt.decode(value, JWKS.key_set(**options, unknown_kid=False), algorithms=ALGORITHMS)
        except InvalidKeyIdError:
            token = jwt.decode(value, JWKS.key_set(**options, unknown_kid=True), algorithms=ALGORITHMS)
        registry = jwt.JWTClaimsRegistry(
            leeway=config["leeway_seconds"],
            iss={"essential": True, "value": config["issuer"]},
            aud={"essential": True, "value": config["api_audience"]},
            exp={"essential": True},
        )
        registry.validate(token.claims)
    except ExpiredTokenError as exc:
        raise TokenRefused("expired") from exc
    except InvalidKeyIdError as exc:
        raise TokenRefused("unknown_key") from exc
    except JoseError as exc:
        raise TokenRefused(getattr(exc, "error", "invalid_token")) from exc
    except (requests.RequestException, ValueError, KeyError) as exc:
        logger.warning("Pro Santé Connect's keys cannot be fetched (%s).", type(exc).__name__)
        raise TokenRefused("keys_unavailable") from exc
    return dict(token.claims)


@dataclass(frozen=True)
class ProviderToken:
    """``request.auth`` for a PSC access token: Carnet's scope it grants (``read``, ``write`` or "") and its acr."""

    scope: str
    acr: str
    client_id: str


def carnet_scope(claims: dict[str, Any]) -> str:
    granted = set(str(claims.get("scope") or "").split())
    return next((scope for name, scope in SCOPES.items() if name in granted), "")


INVALID = _("Jeton Pro Santé Connect invalide : signature, émetteur ou audience refusés.")
EXPIRED = _("Jeton Pro Santé Connect expiré.")
UNAVAILABLE = _("Les clés de Pro Santé Connect sont indisponibles ; réessayez dans quelques instants.")
NO_PRACTITIONER = _("Ce jeton Pro Santé Connect ne correspond à aucun professionnel de santé actif de Carnet.")
NO_SCOPE = _("Ce jeton Pro Santé Connect ne donne aucun droit sur Carnet (portée carnet:read ou carnet:write).")


class PscTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <JWT>`` issued by Pro Santé Connect. Carnet's own tokens: not this class's business."""

    def authenticate(self, request: Request) -> tuple[User, ProviderToken] | None:
        header = str(request.META.get("HTTP_AUTHORIZATION", "")).split()
        if len(header) != 2 or header[0].lower() != KEYWORD.lower() or not looks_like_jwt(header[1]):
            return None
        if not accepts_psc_tokens():
            return None  # TokenAuthentication then refuses it as an unknown token
        try:
            claims = verify_access_token(header[1])
        except TokenRefused as exc:
            logger.info("Pro Santé Connect access token refused (%s).", exc.reason)
            self._count_refusal(request)
            message = {"expired": EXPIRED, "keys_unavailable": UNAVAILABLE}.get(exc.reason, INVALID)
            raise exceptions.AuthenticationFailed(message, code="invalid_token") from exc
        try:
            user = practitioner_account(claims)
        except PractitionerRefused as exc:
            self._count_refusal(request)
            raise exceptions.AuthenticationFailed(NO_PRACTITIONER, code="invalid_token") from exc
        scope = carnet_scope(claims)
        if not scope:
            raise exceptions.PermissionDenied(NO_SCOPE, code="insufficient_scope")
        acr = str(claims.get("acr") or "")
        attest_assurance(acr)
        return user, ProviderToken(scope=scope, acr=acr, client_id=str(claims.get("client_id") or ""))

    def _count_refusal(self, request: Request) -> None:
        from accounts.api_auth import RefusedTokenThrottle  # api_auth imports this module's ProviderToken

        throttle = RefusedTokenThrottle()
        if not throttle.allow_request(request, None):  # type: ignore[arg-type]  # no view yet: authenticating
            raise exceptions.Throttled(wait=throttle.wait())

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="carnet"'


class PscTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # drf-spectacular: unannotated
    """The PSC access token in the OpenAPI schema."""

    target_class = PscTokenAuthentication
    name = "psc"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (Pro Santé Connect)"}
