"""API tokens: create, verify, revoke, list (the DRF authentication that reads them is ``accounts.api_auth``).

A token is ``carnet_`` followed by 43 URL-safe characters: 32 bytes from ``secrets``. It is shown once, at
creation; the database keeps its SHA-256 only (``ApiToken.digest``). A fast hash is the right tool here: the
secret has 256 bits of entropy, so there is no dictionary to try and nothing a slow hash (PBKDF2, Argon2)
would protect, while the request path stays one indexed look-up (the digest is unique). A leaked database
therefore gives no usable token.

A token belongs to one practitioner or patient account (staff get none: they have no API access, their door is
the admin site). It has a name, a scope (``read`` or ``write``), an expiry (at most ``MAX_LIFETIME_DAYS``),
may be revoked at any time, and records its last use (at most one write a minute per token, so that a busy
client does not turn every read into a write). A wrong, expired or revoked token, or one whose account was
deactivated or whose practitioner was suspended, is answered 401, the same way for each.
"""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from plumbing.sql import CompiledQuery
from records.actors import Actor, is_staff
from records.models import User

from .models import ApiToken

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "carnet_"  # noqa: S105  a prefix, not a secret
DEFAULT_LIFETIME_DAYS = 90
MAX_LIFETIME_DAYS = 365
MAX_ACTIVE_TOKENS = 20
LAST_USE_PRECISION = timedelta(minutes=1)
KEYWORD = "Bearer"


class TokenRefused(ValidationError):
    """A token cannot be created as asked. Nothing was created."""


@dataclass(frozen=True)
class NewToken:
    """A freshly created token: ``secret`` is the only copy of the token in clear; show it once."""

    token: ApiToken
    secret: str


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def may_hold_tokens(user: User | None) -> bool:
    """Practitioners in practice and patients with a profile; never staff (no API write access for them)."""
    if user is None or not user.is_active:
        return False
    if user.kind == User.Kind.PRACTITIONER:
        practitioner = getattr(user, "practitioner", None)
        return practitioner is not None and practitioner.is_active
    return user.kind == User.Kind.PATIENT and getattr(user, "profile", None) is not None


def do_create_token(
    user: User, *, name: str, scope: str, lifetime_days: int = DEFAULT_LIFETIME_DAYS, actor: Actor
) -> NewToken:
    """Create a named token for ``user`` (who must be ``actor``); returns it with its secret, shown once."""
    name = (name or "").strip()
    if not isinstance(actor, User) or actor.pk != user.pk or not may_hold_tokens(user):
        raise TokenRefused(_("Ce compte ne peut pas créer de jeton d'API."), code="not_allowed")
    if not name:
        raise TokenRefused(_("Donnez un nom au jeton (par exemple le nom du logiciel)."), code="name_required")
    if scope not in ApiToken.Scope.values:
        raise TokenRefused(_("Choisissez les droits du jeton."), code="scope_unknown")
    if not 1 <= lifetime_days <= MAX_LIFETIME_DAYS:
        raise TokenRefused(
            _("La durée de validité doit être comprise entre 1 et %(max)s jours."),
            code="lifetime",
            params={"max": MAX_LIFETIME_DAYS},
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic(durable=True):
        User.objects.select_for_update().get(pk=user.pk)  # serialises the count below per account
        if active_tokens(user).count() >= MAX_ACTIVE_TOKENS:
            raise TokenRefused(
                _("Vous avez déjà %(max)s jetons actifs : révoquez-en un d'abord."),
                code="too_many",
                params={"max": MAX_ACTIVE_TOKENS},
            )
        token = ApiToken.objects.create(
            user=user,
            name=name[:80],
            scope=scope,
            prefix=secret[: len(TOKEN_PREFIX) + 6],
            digest=digest_of(secret),
            created_at=now,
            expires_at=now + timedelta(days=lifetime_days),
        )
    logger.info("API token %s created for user %s.", token.pk, user.pk)
    return NewToken(token=token, secret=secret)


def do_revoke_token(token: ApiToken, *, actor: User) -> ApiToken:
    """Revoke one of the actor's own tokens (at once: the next request with it is refused). Idempotent."""
    with transaction.atomic(durable=True):
        locked = ApiToken.objects.select_for_update().filter(pk=token.pk, user_id=actor.pk).first()
        if locked is None:
            raise TokenRefused(_("Ce jeton est introuvable."), code="not_found")
        token = locked
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            logger.info("API token %s revoked by user %s.", token.pk, actor.pk)
    return token


def do_revoke_token_by_staff(token: ApiToken, *, actor: Actor) -> ApiToken:
    """Revoke any account's token on a staff member's decision (admin), traced with the staff member (T1).

    Idempotent: an already revoked token is left as it was, and nothing is traced.
    """
    from .trail import record_entry

    if not is_staff(actor):
        raise TokenRefused(
            _("Seul un agent de l'Assurance Maladie peut effectuer cette opération."), code="not_allowed"
        )

    with transaction.atomic(durable=True):
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            record_entry(profile=None, action="api_token_revoked", actor=actor, detail=f"token {token.pk}")
            logger.info("API token %s revoked by staff user %s.", token.pk, actor.pk)
    return token


def tokens_of(user: User) -> QuerySet[ApiToken]:
    """The user's tokens, newest first, revoked and expired ones included (the list shows their state)."""
    return ApiToken.objects.filter(user_id=user.pk).order_by("-created_at", "-pk")


def active_tokens(user: User) -> QuerySet[ApiToken]:
    return tokens_of(user).filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


def token_with_account(digest: str) -> QuerySet[ApiToken]:
    """The token with this digest, its user, practitioner (with profession) and profile: one query."""
    return ApiToken.objects.select_related("user__practitioner__profession", "user__profile").filter(digest=digest)


# Every API call runs it: compiled once (~1 ms of Python a call otherwise, bench/README.md, api.py).
_token_with_account = CompiledQuery(token_with_account, "\x00carnet-slot:digest")


def verify_token(secret: str, *, client_address: str | None = None) -> ApiToken | None:
    """The live token for this secret with its user (and practitioner) loaded in one query, or None."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    found = _token_with_account.instances(digest_of(secret), using=ApiToken.objects.db)
    token: ApiToken | None = found[0] if found else None  # the digest is unique
    now = timezone.now()
    if token is None or token.revoked_at is not None or token.expires_at <= now or not may_hold_tokens(token.user):
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USE_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_address=client_address)
        token.last_used_at, token.last_used_address = now, client_address
    return token
