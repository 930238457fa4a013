"""How FHIR knows a connected app is calling (issue 17): ``Authorization: Bearer carnetapp_…``.

The DRF side of the access tokens ``accounts.app_server`` issues. A token is live while it has not expired, its
connection was not revoked, its account is active and still speaks for the connection's profile (L10: a
representative whose representation ended loses their apps' access with it). Anything else is a 401, the same
for each case. The answer carries the connection and the scopes granted (``AppAccess``); ``HasAppScope`` checks
the scope a resource type needs (``accounts.smart.RESOURCE_SCOPES``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AccessToken, Application
from rest_framework import authentication, exceptions, permissions

from accounts.api_auth import RefusedTokenThrottle
from records.actors import speaks_for
from records.models import Profile, User

from .app_server import APP_TOKEN_PREFIX, app_name
from .models import AppConnection
from .smart import RESOURCE_SCOPES

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

LAST_USE_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class AppAccess:
    """``request.auth`` for an app: its connection (profile, account), the app, and the scopes it was granted."""

    connection: AppConnection
    application: Application
    scopes: frozenset[str]

    @property
    def profile(self) -> Profile:
        return self.connection.profile

    @property
    def app_name(self) -> str:
        return app_name(self.application)


def is_app_token(request: Any) -> bool:
    """Whether the request bears a connected app's token (the FHIR routes send it to the patient context)."""
    header = str(request.META.get("HTTP_AUTHORIZATION", "")).split()
    return len(header) == 2 and header[0].lower() == "bearer" and header[1].startswith(APP_TOKEN_PREFIX)


def _refuse(request: Request) -> NoReturn:
    throttle = RefusedTokenThrottle()  # guessing tokens costs the address's allowance, as for the API's tokens
    if not throttle.allow_request(request, None):  # type: ignore[arg-type]  # no view yet: authenticating
        raise exceptions.Throttled(wait=throttle.wait())
    raise exceptions.AuthenticationFailed(_("Jeton d'application invalide, expiré ou retiré."), code="invalid_token")


class AppTokenAuthentication(authentication.BaseAuthentication):
    """A connected app's access token; another kind of header is not this class's business."""

    def authenticate(self, request: Request) -> tuple[User, AppAccess] | None:
        if not is_app_token(request):
            return None
        secret = str(request.META["HTTP_AUTHORIZATION"]).split()[1]
        if len(secret) > 100 or not secret.isascii():
            _refuse(request)
        token = (
            AccessToken.objects.select_related(
                "user", "application", "carnet_link__connection__profile__legal_representative"
            )
            .filter(token_checksum=hashlib.sha256(secret.encode("utf-8")).hexdigest())
            .first()
        )
        link = getattr(token, "carnet_link", None) if token is not None else None
        now = timezone.now()
        if token is None or link is None or token.expires <= now or token.user is None:
            _refuse(request)
        connection = link.connection
        user: User = token.user
        if (
            connection.revoked_at is not None
            or connection.user_id != user.pk
            or not user.is_active
            or not speaks_for(connection.profile, user)
        ):
            _refuse(request)
        connection.user = user  # the same account, already loaded
        if connection.last_used_at is None or now - connection.last_used_at >= LAST_USE_PRECISION:
            AppConnection.objects.filter(pk=connection.pk).update(last_used_at=now)
            connection.last_used_at = now
        return user, AppAccess(
            connection=connection, application=token.application, scopes=frozenset(token.scope.split())
        )

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="carnet"'


class HasAppScope(permissions.BasePermission):
    """The app was granted the scope the view's ``resource_type`` needs (else 403 ``insufficient_scope``)."""

    message = _("Cette application n'a pas reçu l'autorisation de lire ces données.")
    code = "insufficient_scope"

    def has_permission(self, request: Request, view: APIView) -> bool:
        access = request.auth
        if not isinstance(access, AppAccess):
            return False
        needed = RESOURCE_SCOPES.get(getattr(view, "resource_type", ""), "")
        return bool(needed) and needed in access.scopes
