"""A real OpenID provider on loopback for the tests: npm ``oidc-provider`` (tests/js/oidc_provider.mjs).

``OpenIdProvider`` starts the Node script with a profile of Pro Santé Connect (``psc_config``) or FranceConnect
(``fc_config``), waits for its ``ready`` line and stops it at teardown; ``restart(keys=…)`` serves the same issuer
with other signing keys (key rotation). ``access_token(…)`` walks the authorisation-code flow with PKCE against it
the way practice software would (authlib's OAuth client, the sign-in form posted over HTTP) and returns the JWT
access token the provider issued for Carnet's API.
"""

from __future__ import annotations

import functools
import json
import subprocess  # noqa: S404  (the provider is our own test script, started without a shell)
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc.jwk import RSAKey

JS = Path(__file__).resolve().parent / "js"
SCRIPT = JS / "oidc_provider.mjs"

PSC_CLIENT = {"client_id": "carnet-psc", "client_secret": "psc-secret-for-the-tests-only-0123456789"}
FC_CLIENT = {"client_id": "carnet-fc", "client_secret": "fc-secret-for-the-tests-only-0123456789"}
SOFTWARE_CLIENT = {"client_id": "logiciel-de-cabinet", "client_secret": "software-secret-0123456789abcdef"}
SOFTWARE_REDIRECT = "http://127.0.0.1:9/callback"  # never reached: the code is read from the redirect
API_RESOURCE = "https://carnet.test/api"
OTHER_RESOURCE = "https://autre-service.test/api"
SHORT_RESOURCE = "https://carnet.test/api/court"  # Carnet's audience, tokens valid 1 second
API_AUDIENCE = "carnet-api"
PSC_ACRS = ["eidas1", "eidas2", "eidas3"]
FC_ACRS = ["eidas1", "eidas2", "eidas3"]


@functools.cache
def signing_key(kid: str) -> dict[str, Any]:
    """A private RSA JWK (generated once per test session and name)."""
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True).as_dict(
        private=True
    )


def _clients(own: dict[str, str], base_urls: list[str], callback: str, logout: str) -> list[dict[str, Any]]:
    return [
        {
            **own,
            "redirect_uris": [base + callback for base in base_urls],
            "post_logout_redirect_uris": [base + logout for base in base_urls],
            "response_types": ["code"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "client_secret_post",
        },
        {
            **SOFTWARE_CLIENT,
            "redirect_uris": [SOFTWARE_REDIRECT],
            "response_types": ["code"],
            "grant_types": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
        },
    ]


def _resources(scope: str) -> dict[str, Any]:
    return {
        API_RESOURCE: {"audience": API_AUDIENCE, "scope": scope},
        SHORT_RESOURCE: {"audience": API_AUDIENCE, "scope": scope, "ttl": 1},
        OTHER_RESOURCE: {"audience": "autre-service", "scope": scope},
    }


def psc_config(base_urls: list[str], practitioners: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """Pro Santé Connect's shape: scope ``scope_all``, ``SubjectNameID`` = "8" + RPPS, acr eidas1/2/3.

    ``practitioners``: RPPS -> (given name, family name); any other 11-digit RPPS also signs in (as PSC would).
    """
    accounts = {
        rpps: {"SubjectNameID": f"8{rpps}", "preferred_username": f"8{rpps}", "given_name": g, "family_name": f}
        for rpps, (g, f) in (practitioners or {}).items()
    }
    return {
        "profile": "psc",
        "title": "Pro Santé Connect (test)",
        "keys": [signing_key("psc-1")],
        "clients": _clients(PSC_CLIENT, base_urls, "/pro/connexion/psc/retour/", "/pro/connexion/psc/deconnecte/"),
        "acrValues": PSC_ACRS,
        "scopes": ["openid", "scope_all", "carnet:read", "carnet:write"],
        "claims": {
            "openid": ["sub"],
            "scope_all": ["SubjectNameID", "preferred_username", "given_name", "family_name"],
        },
        "accounts": accounts,
        "accessTokenClaims": ["SubjectNameID", "preferred_username"],
        "resources": _resources("carnet:read carnet:write"),
    }


def fc_config(base_urls: list[str], identities: dict[str, dict[str, str]]) -> dict[str, Any]:
    """FranceConnect's shape: one scope per claim of the pivot identity, acr eidas1/2/3.

    ``identities``: login -> claims (given_name, family_name, birthdate, gender, birthplace, birthcountry…).
    """
    pivot = ["given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry", "email"]
    return {
        "profile": "fc",
        "title": "FranceConnect (test)",
        "keys": [signing_key("fc-1")],
        "clients": _clients(
            FC_CLIENT, base_urls, "/connexion/franceconnect/retour/", "/connexion/franceconnect/deconnecte/"
        ),
        "acrValues": FC_ACRS,
        "scopes": ["openid", *pivot, "preferred_username"],
        "claims": {"openid": ["sub"], **{name: [name] for name in pivot}, "preferred_username": ["preferred_username"]},
        "accounts": identities,
        "accessTokenClaims": [],
        "resources": _resources("carnet:read"),
    }


@dataclass
class OpenIdProvider:
    """One running provider (a Node process)."""

    config: dict[str, Any]
    issuer: str = ""
    process: subprocess.Popen[str] | None = None
    _files: list[Path] = field(default_factory=list)

    def start(self) -> OpenIdProvider:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(self.config, handle)
        self._files.append(Path(handle.name))
        self.process = subprocess.Popen(  # noqa: S603
            ["node", str(SCRIPT), handle.name], stdout=subprocess.PIPE, text=True, cwd=JS
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError(f"The OpenID provider did not start: {line!r}")
        self.issuer = line.removeprefix("ready ")
        self.config["port"] = int(urlsplit(self.issuer).port or 0)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files.clear()

    def restart(self, **changes: Any) -> OpenIdProvider:
        """The same issuer (same port) with other settings, e.g. ``keys=[new, old]`` (the first one signs)."""
        self.stop()
        self.config.update(changes)
        return self.start()

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def sign_in(self, url: str, *, login: str, acr: str, until: str, cancel: bool = False) -> str:
        """Follow an authorisation URL through the provider's sign-in form, as a browser would.

        Returns the redirect back to the client (the first ``Location`` that starts with ``until``).
        """
        browser = requests.Session()
        response = browser.get(url, allow_redirects=False, timeout=10)
        for _hop in range(10):
            location = response.headers.get("Location", "")
            if location.startswith(until):
                return location
            if response.status_code == 200 and "/interaction/" in response.url:
                step = "abort" if cancel else "login"
                form = {"login": login, "acr": acr}
                response = browser.post(f"{response.url}/{step}", data=form, allow_redirects=False, timeout=10)
                continue
            if not location:
                break
            response = browser.get(urljoin(response.url, location), allow_redirects=False, timeout=10)
        raise RuntimeError("The authorisation-code flow did not come back to the client.")

    def access_token(
        self, login: str, *, acr: str = "eidas3", scope: str = "openid carnet:read", resource: str = API_RESOURCE
    ) -> str:
        """A JWT access token for ``resource``, after a full authorisation-code flow with PKCE as ``login``."""
        metadata = requests.get(self.metadata_url, timeout=10).json()
        client = OAuth2Session(
            SOFTWARE_CLIENT["client_id"],
            SOFTWARE_CLIENT["client_secret"],
            scope=scope,
            redirect_uri=SOFTWARE_REDIRECT,
            code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post",
        )
        verifier = generate_token(48)
        url, _state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, resource=resource, acr_values=acr
        )
        location = self.sign_in(url, login=login, acr=acr, until=SOFTWARE_REDIRECT)
        code = parse_qs(urlsplit(location).query)["code"][0]
        token = client.fetch_token(
            metadata["token_endpoint"], code=code, code_verifier=verifier, resource=resource, timeout=10
        )
        return str(token["access_token"])


TEST_CLIENT_URL = "http://testserver"  # what Django's test client calls itself


@pytest.fixture
def psc_provider(settings):
    """Pro Santé Connect on loopback, configured in Carnet's settings, for Django's test client."""
    provider = OpenIdProvider(psc_config([TEST_CLIENT_URL])).start()
    configure_psc(settings, provider)
    yield provider
    provider.stop()


def client_sign_in(client, provider: OpenIdProvider, start_url: str, *, login: str, acr: str, cancel: bool = False):
    """Press the provider's button with Django's test client, sign in at the provider, and come back."""
    response = client.post(start_url)
    assert response.status_code == 302 and response["Location"].startswith(provider.issuer), response
    location = provider.sign_in(response["Location"], login=login, acr=acr, until=TEST_CLIENT_URL, cancel=cancel)
    return client.get(location.removeprefix(TEST_CLIENT_URL))


def allow_form_action(settings, provider: OpenIdProvider) -> None:
    """What config/settings.py does for a configured issuer: the CSP lets forms redirect to the provider."""
    policy = settings.CONTENT_SECURITY_POLICY
    directives = {**policy["DIRECTIVES"], "form-action": [*policy["DIRECTIVES"]["form-action"], provider.issuer]}
    settings.CONTENT_SECURITY_POLICY = {**policy, "DIRECTIVES": directives}


def configure_psc(settings, provider: OpenIdProvider) -> None:
    settings.CARNET_PSC = {
        **settings.CARNET_PSC,
        "issuer": provider.issuer,
        "client_id": PSC_CLIENT["client_id"],
        "client_secret": PSC_CLIENT["client_secret"],
        "api_audience": API_AUDIENCE,
    }
    allow_form_action(settings, provider)


def configure_fc(settings, provider: OpenIdProvider) -> None:
    settings.CARNET_FRANCECONNECT = {
        **settings.CARNET_FRANCECONNECT,
        "issuer": provider.issuer,
        "client_id": FC_CLIENT["client_id"],
        "client_secret": FC_CLIENT["client_secret"],
    }
    allow_form_action(settings, provider)


FC_IDENTITIES = {  # the pivot identities FranceConnect attests in the tests (login -> claims)
    "alice": {
        "given_name": "Alice Marie",
        "family_name": "Martin",
        "birthdate": "1985-03-12",
        "gender": "female",
        "birthplace": "75056",
        "birthcountry": "99100",
        "email": "alice.martin@courriel.example",
    },
    "bernard": {
        "given_name": "Bernard Louis",
        "family_name": "PETIT",
        "birthdate": "1952-11-03",
        "gender": "male",
        "birthplace": "59350",
        "birthcountry": "99100",
        "email": "bernard.petit@courriel.example",
    },
    "inconnue": {
        "given_name": "Zoé",
        "family_name": "Inconnue",
        "birthdate": "1990-01-01",
        "gender": "female",
        "birthplace": "75056",
        "birthcountry": "99100",
    },
}


@pytest.fixture
def fc_provider(settings):
    """FranceConnect on loopback, configured in Carnet's settings, for Django's test client."""
    provider = OpenIdProvider(fc_config([TEST_CLIENT_URL], dict(FC_IDENTITIES))).start()
    configure_fc(settings, provider)
    yield provider
    provider.stop()
