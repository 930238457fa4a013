"""Vocabulary and clock of the profile lifecycle (rules L1-L10).

Trail action names, errors, deadlines and the provisional code. The actions themselves live in
``records.actions``; this module holds what they, the views and the scheduled jobs share, so that a deadline is
computed in exactly one place.
"""

import secrets
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_lazy as _

# L1: 31 symbols without 0/O, 1/I/L: easy to copy from a letter. 10 of them carry about 49.5 bits.
PROVISIONAL_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PROVISIONAL_CODE_LENGTH = 10
ADULT_AGE = 18


class TrailAction(models.TextChoices):
    """Trail ``action`` values of lifecycle events (T1, L9). Transitions carry ``detail="<from>-><to>"``."""

    ENROL = "enrol", _("Inscription et notice de pré-ouverture")  # L1
    PROVISIONAL_CODE_REISSUED = "provisional_code_reissued", _("Nouveau code provisoire")  # L1
    OPPOSITION = "opposition", _("Opposition à la création")  # L2
    OPENING = "opening", _("Ouverture")  # L3
    ACTIVATION = "activation", _("Activation")  # L4
    CLOSURE = "closure", _("Clôture")  # L5, L7
    DELETION_REQUEST = "deletion_request", _("Demande de suppression anticipée")  # L5
    REOPENING = "reopening", _("Réouverture")  # L6
    SUSPENSION = "suspension", _("Suspension")  # L7
    SUSPENSION_LIFTED = "suspension_lifted", _("Levée de la suspension")  # L7
    DEATH = "death", _("Décès enregistré")  # L8
    LEGAL_REPRESENTATIVE = "legal_representative", _("Représentant légal")  # L10
    PURGE = "purge", _("Suppression définitive")  # L5, T4 (written in the national chain)


class IllegalTransition(ValidationError):
    """A lifecycle action refused in the profile's current state (L9). Nothing was changed."""


class ActorNotAllowed(IllegalTransition):
    """The actor may not perform this lifecycle action (e.g. a practitioner, or a patient on a staff action)."""


class InvalidProvisionalCode(IllegalTransition):
    """Activation or opposition refused: one generic message whatever was wrong (no oracle, L4)."""

    def __init__(self):
        super().__init__(
            _("Les informations saisies ne permettent pas d'identifier votre profil. Vérifiez-les."),
            code="invalid_credentials",
        )


class ProvisionalCodeHasher(PBKDF2PasswordHasher):
    """PBKDF2 with far fewer rounds than passwords get (1,000,000, ~0.25 s).

    The code is random (~49.5 bits, not a human choice) and lives 6 weeks, while a million profiles a day are
    enrolled at launch. An offline guess of one code still costs ~2**48.5 x 20,000 PBKDF2 rounds, far beyond its
    6-week life.
    """

    algorithm = "pbkdf2_sha256_code"
    iterations = 20_000


_CODE_HASHER = ProvisionalCodeHasher()


def generate_provisional_code() -> str:
    return "".join(secrets.choice(PROVISIONAL_CODE_ALPHABET) for _i in range(PROVISIONAL_CODE_LENGTH))


def normalize_provisional_code(code: str) -> str:
    return "".join(str(code).split()).replace("-", "").upper()


def hash_provisional_code(code: str) -> str:
    return make_password(normalize_provisional_code(code), hasher=_CODE_HASHER)


def provisional_code_matches(code: str | None, encoded: str) -> bool:
    """Constant-time check of a code against its stored hash; the same work is done when there is none."""
    code = normalize_provisional_code(code or "")
    if not code or not encoded.startswith(f"{_CODE_HASHER.algorithm}$"):
        _CODE_HASHER.encode(code or "-", _CODE_HASHER.salt())
        return False
    return _CODE_HASHER.verify(code, encoded)


def check_provisional_code(profile, code: str | None, *, now: datetime | None = None) -> bool:
    """L1: the code matches and has not expired."""
    now = now or timezone.now()
    matches = provisional_code_matches(code, profile.provisional_code_hash)
    expires_at = profile.provisional_code_expires_at
    return matches and expires_at is not None and now < expires_at


def same_nir(given: str, stored: str) -> bool:
    from .identifiers import normalize_nir

    return constant_time_compare(normalize_nir(given or ""), stored)


def provisional_code_expiry(now: datetime) -> datetime:
    return now + timedelta(days=settings.CARNET_PROVISIONAL_CODE_DAYS)  # L1


def opposition_deadline(profile) -> datetime | None:
    """L2/L3: opposition is possible strictly before this instant; the profile opens from it on."""
    if profile.notice_sent_at is None:
        return None
    return profile.notice_sent_at + timedelta(days=settings.CARNET_OPPOSITION_DAYS)


def opening_cutoff(now: datetime) -> datetime:
    """L3: pending profiles whose notice was sent at or before this instant are due to open."""
    return now - timedelta(days=settings.CARNET_OPPOSITION_DAYS)


def suspension_cutoff(now: datetime) -> datetime:
    """L7: suspensions started at or before this instant are due to become closures."""
    return now - timedelta(days=settings.CARNET_SUSPENSION_CLOSE_DAYS)


def add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a common year
        return moment.replace(year=moment.year + years, month=2, day=28)


def archive_end(closed_at: datetime) -> datetime:
    return add_years(closed_at, settings.CARNET_ARCHIVE_YEARS)  # L5


def early_deletion_due(requested_at: datetime) -> datetime:
    """L5: purge due date of an early deletion request (the purge job runs hourly, see tasks)."""
    return requested_at + timedelta(days=settings.CARNET_EARLY_DELETION_DAYS)


def is_minor(birth_date: date, today: date | None = None) -> bool:
    today = today or timezone.localdate()
    try:
        adulthood = birth_date.replace(year=birth_date.year + ADULT_AGE)
    except ValueError:  # born on 29 February: adult on 1 March
        adulthood = date(birth_date.year + ADULT_AGE, 3, 1)
    return today < adulthood
