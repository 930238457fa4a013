"""FranceConnect for patients: who a FranceConnect identity is in Carnet, and the link that remembers it.

FranceConnect attests a *pivot identity*: first names (``given_name``), birth name (``family_name``), birth date,
sex (``gender``), and place of birth (``birthplace``, an INSEE code; ``birthcountry`` for those born abroad). The
first sign-in matches it to exactly one profile's identity traits; the provider's subject (``sub``) is then linked
to the account (``FranceConnectLink``), and later sign-ins use that link. A profile never activated is activated
by the same match (L4 by identity). No match, several matches, or a profile that cannot be used: one refusal,
the same in every case (``NoMatch``), so the answer never tells whether a profile exists.

Linking and unlinking are traced in the profile's trail (T1). Nothing here logs the identity.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from access_control.trail import record_entry
from accounts.models import FranceConnectLink
from records.account_actions import PortalAction
from records.actions import do_activate_profile_by_identity
from records.models import Profile, User

logger = logging.getLogger(__name__)

SEX = {"male": Profile.Sex.MALE, "female": Profile.Sex.FEMALE}
MATCH_LIMIT = 10_000  # profiles sharing one birth date and sex, far above any real count


class NoMatch(Exception):
    """The identity leads to no usable account (whatever the reason: the caller answers the same way)."""


class UnlinkRefused(ValidationError):
    """The link cannot be removed (the account would have no way to sign in)."""


def _name(value: Any) -> str:
    """Upper case, no accents, hyphens and apostrophes as spaces: "Lefèvre-d'Anjou" = "LEFEVRE D ANJOU"."""
    text = unicodedata.normalize("NFKD", str(value or ""))
    text = "".join(char for char in text if not unicodedata.combining(char))
    return " ".join(re.sub(r"[^A-Za-z]+", " ", text).upper().split())


def _birth_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def matching_profile(claims: Mapping[str, Any]) -> Profile | None:
    """The one profile whose identity traits are the pivot identity's, or None (none, or more than one)."""
    birth_date, sex = _birth_date(claims.get("birthdate")), SEX.get(str(claims.get("gender") or ""))
    birth_name, first_names = _name(claims.get("family_name")), _name(claims.get("given_name"))
    place = str(claims.get("birthplace") or claims.get("birthcountry") or "")
    if birth_date is None or sex is None or not birth_name or not first_names:
        return None
    candidates = Profile.objects.filter(birth_date=birth_date, sex=sex).only(
        "pk", "birth_name", "first_names", "birth_place_code", "state", "user_id"
    )[:MATCH_LIMIT]
    found = [
        profile
        for profile in candidates
        if _name(profile.birth_name) == birth_name
        and _name(profile.first_names) == first_names
        and (not profile.birth_place_code or profile.birth_place_code == place)
    ]
    return found[0] if len(found) == 1 else None


def _usable(user: User | None) -> bool:
    return user is not None and user.is_active and user.kind == User.Kind.PATIENT


def _link(user: User, profile: Profile, subject: str) -> FranceConnectLink:
    link = FranceConnectLink.objects.create(user=user, subject=subject, linked_at=timezone.now())
    record_entry(profile=profile, action=PortalAction.FRANCECONNECT_LINKED, actor=user)
    return link


def do_link_franceconnect(user: User, subject: str, *, actor: User) -> FranceConnectLink:
    """Link a FranceConnect subject to the patient's account (T1). ``NoMatch`` if either side is linked already."""
    if actor.pk != user.pk:
        raise NoMatch
    try:
        with transaction.atomic(durable=True):
            profile = Profile.objects.select_for_update().get(user=user)
            link = _link(user, profile, subject)
    except (IntegrityError, Profile.DoesNotExist) as exc:
        raise NoMatch from exc
    logger.info("FranceConnect linked to patient account %s.", user.pk)
    return link


def do_unlink_franceconnect(user: User, *, actor: User) -> None:
    """Remove the account's FranceConnect link (T1); refused while the account has no password to fall back on."""
    if actor.pk != user.pk:
        raise UnlinkRefused(_("Seul le titulaire du compte peut retirer FranceConnect."), code="not_holder")
    if not user.has_usable_password():
        raise UnlinkRefused(
            _(
                "Votre compte n'a pas encore de mot de passe : créez-en un (« Mot de passe oublié ? » sur la page "
                "de connexion) avant de retirer FranceConnect."
            ),
            code="no_password",
        )
    with transaction.atomic(durable=True):
        profile = Profile.objects.select_for_update().get(user=user)
        deleted, _rows = FranceConnectLink.objects.filter(user=user).delete()
        if deleted:
            record_entry(profile=profile, action=PortalAction.FRANCECONNECT_UNLINKED, actor=user)
    logger.info("FranceConnect unlinked from patient account %s.", user.pk)


def account_for(subject: str, claims: Mapping[str, Any]) -> tuple[User, bool]:
    """The patient account FranceConnect's identity signs in, and whether it was activated just now.

    A known subject: its linked account. Otherwise the pivot identity must match exactly one profile: an active
    one gets the link, a pending or open one is activated with it (L4 by identity). Anything else: ``NoMatch``.
    """
    link = FranceConnectLink.objects.select_related("user").filter(subject=subject).first()
    if link is not None:
        if _usable(link.user) and Profile.objects.filter(user=link.user, state=Profile.State.ACTIVE).exists():
            return link.user, False
        raise NoMatch
    profile = matching_profile(claims)
    if profile is None:
        raise NoMatch
    if profile.state == Profile.State.ACTIVE and profile.user_id is not None:
        user = User.objects.get(pk=profile.user_id)
        if not _usable(user):
            raise NoMatch
        do_link_franceconnect(user, subject, actor=user)
        return user, False
    if profile.state not in (Profile.State.PENDING, Profile.State.OPEN):
        raise NoMatch
    email = str(claims.get("email") or "")[:254]
    try:
        with transaction.atomic(durable=True):
            user = do_activate_profile_by_identity(profile, email=email, durable=False)
            _link(user, profile, subject)
    except (ValidationError, IntegrityError) as exc:
        raise NoMatch from exc
    logger.info("Profile %s activated by FranceConnect.", profile.pk)
    return user, True
