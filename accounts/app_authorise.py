"""The authorisation endpoint's protocol side, for the patient portal's consent page (issue 17).

``read_request`` checks an authorisation request with django-oauth-toolkit (registered client, exact redirect URI,
``response_type=code``, PKCE S256, known scopes) and returns what the consent page shows; ``answer`` turns the
patient's decision into the redirect back to the app: a code bound to the connection the patient made, or
``access_denied``. A request whose client or redirect URI is wrong is never redirected (``AuthorisationError``
with ``redirect=False``): the page says so instead, as RFC 6749 section 4.1.2.1 requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.http import HttpRequest, HttpResponse
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.models import Application
from oauth2_provider.views.mixins import OAuthLibMixin

from .models import AppConnection, AppListing
from .smart import SCOPES, ordered

# What oauthlib needs back from the request to issue the code (the rest of its credentials are its own objects).
_KEPT = ("client_id", "redirect_uri", "response_type", "state", "code_challenge", "code_challenge_method")


LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


def redirect_to_app(url: str) -> HttpResponse:
    """The redirect back to the app: HTTPS, or plain HTTP only to the device itself (native apps, RFC 8252 7.3)."""
    parts = urlsplit(url)
    schemes = ["https", "http"] if parts.hostname in LOOPBACK_HOSTS else ["https"]
    response: HttpResponse = OAuth2ResponseRedirect(url, schemes)
    return response


class AuthorisationError(Exception):
    """The request cannot be authorised; ``redirect`` says whether the app may be told (at its redirect URI)."""

    def __init__(self, description: str, *, redirect_url: str = "", application: Application | None = None):
        super().__init__(description)
        self.description = description
        self.redirect_url = redirect_url
        self.application = application

    def response(self) -> HttpResponse | None:
        """The redirect that tells the app, or None when the app may not be trusted with one."""
        if not self.redirect_url or self.application is None:
            return None
        return redirect_to_app(self.redirect_url)


@dataclass(frozen=True)
class AuthorisationRequest:
    """A valid authorisation request: the app, the scopes asked (known ones, in order) and oauthlib's credentials."""

    application: Application
    listing: AppListing | None
    scopes: list[str]
    credentials: dict[str, Any]

    @property
    def redirect_origin(self) -> str:
        """Where the browser goes after the consent form (the page's CSP ``form-action`` must allow it)."""
        parts = urlsplit(self.credentials["redirect_uri"])
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def scope_labels(self) -> list[Any]:
        return [SCOPES[name] for name in self.scopes]


class _Server(OAuthLibMixin):  # type: ignore[misc]  # django-oauth-toolkit: untyped
    """django-oauth-toolkit's configured server (``OAUTH2_PROVIDER``), built once."""


def _core() -> Any:
    return _Server.get_oauthlib_core()


def _error(error: OAuthToolkitError, application: Application | None) -> AuthorisationError:
    oauthlib_error = error.oauthlib_error
    if isinstance(error, FatalClientError) or not oauthlib_error.redirect_uri:
        return AuthorisationError(oauthlib_error.description or oauthlib_error.error)
    separator = "&" if "?" in oauthlib_error.redirect_uri else "?"
    return AuthorisationError(
        oauthlib_error.description or oauthlib_error.error,
        redirect_url=f"{oauthlib_error.redirect_uri}{separator}{oauthlib_error.urlencoded}",
        application=application,
    )


def read_request(request: HttpRequest) -> AuthorisationRequest:
    """The authorisation request in this request's query string, checked; or ``AuthorisationError``."""
    application = Application.objects.filter(client_id=request.GET.get("client_id", "")).first()
    try:
        scopes, credentials = _core().validate_authorization_request(request)
    except OAuthToolkitError as error:
        raise _error(error, application) from None
    if application is None:  # validated above: only a race with its deletion gets here
        raise AuthorisationError("invalid_client")
    if credentials.get("code_challenge_method") != "S256":  # PKCE is required; "plain" is refused (RFC 9700)
        query = {"error": "invalid_request", "error_description": "code_challenge_method must be S256"}
        if credentials.get("state"):
            query["state"] = credentials["state"]
        redirect_uri = credentials["redirect_uri"]
        separator = "&" if "?" in redirect_uri else "?"
        raise AuthorisationError(
            query["error_description"],
            redirect_url=f"{redirect_uri}{separator}{urlencode(query)}",
            application=application,
        )
    listing = AppListing.objects.filter(application=application).first()
    kept = {key: credentials[key] for key in _KEPT if credentials.get(key)}
    return AuthorisationRequest(application=application, listing=listing, scopes=ordered(scopes), credentials=kept)


def answer(request: HttpRequest, auth: AuthorisationRequest, connection: AppConnection | None) -> HttpResponse:
    """Back to the app: a code for ``connection`` (the patient agreed), or ``access_denied`` (``None``)."""
    credentials = dict(auth.credentials)
    credentials["carnet_connection"] = connection  # read by accounts.app_server.SmartValidator
    try:
        uri, _headers, _body, _status = _core().create_authorization_response(
            request, auth.scopes, credentials, connection is not None
        )
    except OAuthToolkitError as error:
        response = _error(error, auth.application).response()
        if response is None:
            raise AuthorisationError(error.oauthlib_error.description) from None
        return response
    return redirect_to_app(uri)
