"""The connected apps' authorisation server (issue 17): django-oauth-toolkit, told about profiles and the trail.

django-oauth-toolkit runs the OAuth 2 protocol (authorisation code, PKCE S256, token, refresh, revocation; see
``OAUTH2_PROVIDER`` in ``config.settings``). This module adds what Carnet needs around it:

- the **connection**: on the consent page the patient picks one profile they speak for (L10); the code, and
  every access token issued from it or refreshed from those, is linked to that ``AppConnection``
  (``SmartValidator``), and the token response names the FHIR ``patient`` the app will read;
- the **actions** that create and revoke a connection, traced in the profile's trail (T1);
- the token **format**: ``carnetapp_`` then 43 random characters, so the API's own tokens (``carnet_``), PSC's
  JWTs and an app's token are told apart by their first characters. The database keeps their SHA-256 only
  (``COMPLIANT_BCP_RFC9700_TOKEN_STORAGE``).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AccessToken, Application, RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator

from access_control import handles
from access_control.trail import record_entry
from records.actors import speaks_for
from records.models import Document, Profile, User

from .models import AppConnection, AppConnectionToken
from .smart import ordered

APP_TOKEN_PREFIX = "carnetapp_"  # noqa: S105  a prefix, not a secret
APP_REFRESH_PREFIX = "carnetrefresh_"  # noqa: S105  a prefix, not a secret


class AppAction(models.TextChoices):
    """Trail ``action`` values about connected apps (T1)."""

    CONNECT = "app_connected", _("Application connectée au dossier")
    REVOKE = "app_revoked", _("Accès d'une application retiré")
    READ = "app_read", _("Lecture par une application connectée")


class ConnectionRefused(ValidationError):
    """A connection cannot be made or changed as asked. Nothing was changed."""


def new_access_token(request: Any = None, refresh_token: bool = False) -> str:
    """An access token: recognisable prefix, 256 bits from ``secrets``."""
    return APP_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token(request: Any = None) -> str:
    return APP_REFRESH_PREFIX + secrets.token_urlsafe(32)


def app_patient_key(connection: AppConnection) -> str:
    """The handle key of an app for one account: each app gets its own Patient ids (no cross-app linking)."""
    return f"a{connection.application_id}.u{connection.user_id}"


def patient_id(connection: AppConnection) -> str:
    """The FHIR Patient id the app uses for its connection's profile (``access_control.handles.stable_id``)."""
    return handles.stable_id(app_patient_key(connection), connection.profile_id)


def app_name(application: Application) -> str:
    return (application.name or str(_("Application sans nom")))[:120]


# --- Actions ----------------------------------------------------------------------------------------------------


def do_connect_app(
    application: Application, profile: Profile, *, scopes: list[str], actor: User, client_address: str | None
) -> AppConnection:
    """The patient lets ``application`` read ``profile`` with ``scopes`` (traced, T1); returns the connection.

    The actor must speak for the profile (holder, or legal representative, L10). A live connection of the same
    account, app and profile is updated to the new scopes rather than duplicated.
    """
    scopes = ordered(scopes)
    with transaction.atomic(durable=True):
        locked = Profile.objects.select_for_update(of=("self",)).select_related("legal_representative")
        profile = locked.get(pk=profile.pk)
        if not speaks_for(profile, actor):
            raise ConnectionRefused(
                _("Vous n'êtes pas autorisé à ouvrir cet espace santé à une application."), code="actor_not_allowed"
            )
        now = timezone.now()
        connection = AppConnection.objects.filter(
            user_id=actor.pk, profile_id=profile.pk, application_id=application.pk, revoked_at__isnull=True
        ).first()
        if connection is None:
            connection = AppConnection.objects.create(
                user=actor, profile=profile, application=application, scope=" ".join(scopes), created_at=now
            )
        else:
            connection.scope = " ".join(scopes)
            connection.save(update_fields=["scope"])
        record_entry(
            profile=profile,
            action=AppAction.CONNECT,
            actor=actor,
            detail=" ".join(scopes)[:200],
            client_address=client_address,
            client_app=app_name(application),
        )
    return connection


def do_revoke_app_connection(connection: AppConnection, *, actor: User, client_address: str | None) -> AppConnection:
    """Withdraw an app's access to a profile: every code and token of the connection dies at once (T1).

    Only the account that connected the app may revoke it. Idempotent: an already revoked connection is left
    as it was, and nothing is traced.
    """
    with transaction.atomic(durable=True):
        locked = AppConnection.objects.select_for_update().filter(pk=connection.pk, user_id=actor.pk).first()
        if locked is None:
            raise ConnectionRefused(_("Cette application connectée est introuvable."), code="not_found")
        if locked.revoked_at is not None:
            return locked
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        links = AppConnectionToken.objects.filter(connection_id=locked.pk)
        token_ids = list(links.filter(access_token__isnull=False).values_list("access_token_id", flat=True))
        RefreshToken.objects.filter(access_token_id__in=token_ids).delete()
        AccessToken.objects.filter(pk__in=token_ids).delete()
        links.delete()  # codes not yet exchanged, too
        application = Application.objects.get(pk=locked.application_id)
        record_entry(
            profile=Profile(pk=locked.profile_id),
            action=AppAction.REVOKE,
            actor=actor,
            client_address=client_address,
            client_app=app_name(application),
        )
    return locked


def connections_of(user: User, profile_ids: list[int]) -> QuerySet[AppConnection]:
    """The account's live connections to these profiles, newest first, with their app (one query)."""
    return (
        AppConnection.objects.filter(user_id=user.pk, profile_id__in=profile_ids, revoked_at__isnull=True)
        .select_related("application", "application__carnet_listing")
        .order_by("-created_at", "-pk")
    )


# --- django-oauth-toolkit's validator ----------------------------------------------------------------------------


def _live_connection(link: AppConnectionToken | None) -> AppConnection | None:
    if link is None:
        return None
    connection = AppConnection.objects.filter(pk=link.connection_id, revoked_at__isnull=True).first()
    return connection


class SmartValidator(OAuth2Validator):  # type: ignore[misc]  # django-oauth-toolkit: untyped
    """django-oauth-toolkit's validator, binding codes and tokens to the patient's ``AppConnection``.

    The consent page passes ``carnet_connection`` in the credentials of the authorisation response; the code is
    linked to it, the token exchange and refreshes follow the link, and a revoked connection stops all three.
    """

    def save_authorization_code(
        self, client_id: str, code: dict[str, Any], request: Any, *args: Any, **kwargs: Any
    ) -> None:
        connection = getattr(request, "carnet_connection", None)
        if not isinstance(connection, AppConnection):
            raise RuntimeError("An authorisation code is issued only from the consent page (a connection).")
        grant = self._create_authorization_code(request, code)
        AppConnectionToken.objects.create(connection=connection, grant=grant)

    def validate_code(
        self, client_id: str, code: str, client: Application, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            return False
        link = AppConnectionToken.objects.filter(grant__code=code, grant__application=client).first()
        request.carnet_connection = _live_connection(link)
        return request.carnet_connection is not None

    def validate_refresh_token(
        self, refresh_token: str, client: Application, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        instance = request.refresh_token_instance
        link = AppConnectionToken.objects.filter(access_token_id=instance.access_token_id).first()
        request.carnet_connection = _live_connection(link)
        return request.carnet_connection is not None

    def _create_access_token(
        self, expires: Any, request: Any, token: dict[str, Any], source_refresh_token: Any = None
    ) -> AccessToken:
        access_token = super()._create_access_token(expires, request, token, source_refresh_token)
        AppConnectionToken.objects.create(connection=request.carnet_connection, access_token=access_token)
        return access_token

    def save_bearer_token(self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any) -> None:
        super().save_bearer_token(token, request, *args, **kwargs)
        # SMART App Launch: the launch context travels in the token response.
        token["patient"] = patient_id(request.carnet_connection)


def do_trace_app_read(
    connection: AppConnection,
    *,
    actor: User,
    application: Application,
    what: str,
    document: Document | None = None,
    client_address: str | None,
) -> None:
    """T1: a connected app read part of the profile for ``actor`` (``what``: the FHIR interaction), by its name."""
    with transaction.atomic(durable=True):
        record_entry(
            profile=Profile(pk=connection.profile_id),
            action=AppAction.READ,
            actor=actor,
            document=document,
            detail=what[:200],
            client_address=client_address,
            client_app=app_name(application),
        )
