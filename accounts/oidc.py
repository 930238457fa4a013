"""Carnet as an OpenID Connect client of the national providers (Pro Santé Connect, FranceConnect).

authlib's Django client does the protocol: discovery, the authorisation-code flow with PKCE (S256), ``state`` and
``nonce`` kept in the session, the ID token's signature (provider's JWKS, refetched on an unknown key), issuer,
audience, expiry and nonce, then the userinfo call and RP-initiated logout. This module adds what Carnet needs
around it: the configuration from settings (``CARNET_PSC``, ``CARNET_FRANCECONNECT``), one outcome type, and
the level of assurance (``acr``) compared with the configured strong levels.

Nothing here logs claims: they are personal data (names, birth date and place).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from django.conf import settings
from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest, HttpResponse
from joserfc.errors import JoseError

from accounts.auth import provider_sign_in

logger = logging.getLogger(__name__)


class Provider(StrEnum):
    PSC = "psc"
    FRANCECONNECT = "franceconnect"


_SETTINGS = {Provider.PSC: "CARNET_PSC", Provider.FRANCECONNECT: "CARNET_FRANCECONNECT"}


def provider_settings(provider: Provider) -> dict[str, Any]:
    value: dict[str, Any] = getattr(settings, _SETTINGS[provider])
    return value


def is_configured(provider: Provider) -> bool:
    """Whether the provider's button is shown: an issuer and a client id (system checks catch half-configs)."""
    config = provider_settings(provider)
    return bool(config["issuer"] and config["client_id"])


class ProviderRefused(Exception):
    """The provider's answer cannot be used (cancelled, bad state, invalid token, provider unreachable)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # a short technical word for the logs (never personal data)


@dataclass(frozen=True)
class Identity:
    """What the provider attested: its subject, the claims (ID token + userinfo), the level and the ID token."""

    subject: str
    claims: dict[str, Any]
    acr: str
    id_token: str

    def is_strong(self, provider: Provider) -> bool:
        return is_strong(provider, self.acr)


def is_strong(provider: Provider, acr: str) -> bool:
    """Whether ``acr`` is one of the provider's strong levels (``*_STRONG_ACR``): Carnet's second factor is waived."""
    return bool(acr) and acr in provider_settings(provider)["strong_acr"]


@functools.lru_cache(maxsize=8)
def _client(
    provider: str, issuer: str, client_id: str, secret: str, private_key: str, scopes: str, timeout: int
) -> DjangoOAuth2App:
    registry = OAuth()
    auth_method = "private_key_jwt" if private_key else "client_secret_post"
    client: DjangoOAuth2App = registry.register(
        name=provider,
        client_id=client_id,
        client_secret=private_key or secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": scopes,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": auth_method,
            "default_timeout": timeout,
        },
    )
    if private_key:
        # The assertion's audience is the token endpoint (RFC 7523), learnt from the discovery document.
        client.client_auth_methods = [PrivateKeyJWT(client.load_server_metadata()["token_endpoint"])]
    return client


def client(provider: Provider) -> DjangoOAuth2App:
    """authlib's client for the provider, as configured now (cached per configuration)."""
    c = provider_settings(provider)
    return _client(
        str(provider), c["issuer"], c["client_id"], c["client_secret"], c["private_key"], c["scopes"], c["timeout"]
    )


def start(request: HttpRequest, provider: Provider, redirect_uri: str) -> HttpResponse:
    """Redirect to the provider's authorisation endpoint (state, nonce and PKCE verifier kept in the session)."""
    try:
        response: HttpResponse = client(provider).authorize_redirect(
            request, redirect_uri, acr_values=provider_settings(provider)["acr_values"]
        )
    except (requests.RequestException, ValueError, KeyError) as exc:
        logger.warning("The %s provider cannot be reached (%s).", provider, type(exc).__name__)
        raise ProviderRefused("unreachable") from exc
    return response


def finish(request: HttpRequest, provider: Provider) -> Identity:
    """Check the provider's answer on the callback and return who it attests (``ProviderRefused`` otherwise)."""
    app = client(provider)
    try:
        token = app.authorize_access_token(request)
        id_claims = dict(token.get("userinfo") or {})
        if not id_claims:
            raise ProviderRefused("no_id_token")  # no ID token, or no nonce in this session for that state
        userinfo = dict(app.userinfo(token=token))
    except OAuthError as exc:
        logger.info("The %s sign-in came back refused (%s).", provider, exc.error)
        raise ProviderRefused(str(exc.error or "oauth_error")) from exc
    except JoseError as exc:
        logger.warning("The %s ID token was refused (%s).", provider, type(exc).__name__)
        raise ProviderRefused("invalid_id_token") from exc
    except (requests.RequestException, ValueError, KeyError) as exc:
        logger.warning("The %s provider failed during the sign-in (%s).", provider, type(exc).__name__)
        raise ProviderRefused("unreachable") from exc
    if userinfo.get("sub") != id_claims.get("sub"):
        raise ProviderRefused("subject_mismatch")  # OpenID Connect Core 5.3.2: never mix two users' claims
    return Identity(
        subject=str(id_claims["sub"]),
        claims={**id_claims, **userinfo},
        acr=str(id_claims.get("acr") or ""),
        id_token=str(token["id_token"]),
    )


def end_session_url(provider: Provider, *, id_token: str, post_logout_redirect_uri: str) -> str | None:
    """The provider's end-session URL for single logout, or None when it has none (or cannot be reached)."""
    app = client(provider)
    try:
        endpoint = app.load_server_metadata().get("end_session_endpoint")
        if not endpoint:
            return None
        result = app.create_logout_url(
            post_logout_redirect_uri=post_logout_redirect_uri, id_token_hint=id_token, client_id=app.client_id
        )
    except (requests.RequestException, ValueError, KeyError, RuntimeError) as exc:
        logger.warning("The %s end-session endpoint is unknown (%s).", provider, type(exc).__name__)
        return None
    url: str = result["url"]
    return url


def sign_out(request: HttpRequest) -> str | None:
    """End the Carnet session; returns the provider's end-session URL when a national sign-in opened it.

    Single logout: the browser then goes to the provider, which ends its own session and sends it back to the
    ``logout_uri`` recorded at sign-in.
    """
    data = provider_sign_in(request)
    auth_logout(request)
    if not data.get("id_token") or data.get("provider") not in set(Provider):
        return None
    provider = Provider(data["provider"])
    if not is_configured(provider):
        return None
    return end_session_url(provider, id_token=data["id_token"], post_logout_redirect_uri=data["logout_uri"])
