"""Pro Santé Connect: who a PSC identity is in Carnet's practitioner directory.

PSC names a practitioner by their national identifier, ``SubjectNameID`` (``preferred_username`` in its access
tokens): "8" followed by the 11-digit RPPS number (rule I2). The practitioner must be in the directory, active,
and have a Carnet account: a PSC sign-in never creates a practitioner or an account.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _

from practitioners.models import Practitioner
from records.models import User

logger = logging.getLogger(__name__)

NATIONAL_ID_CLAIMS = ("SubjectNameID", "preferred_username")
UNKNOWN_MESSAGE = _(
    "Votre numéro RPPS n'est pas inscrit dans Carnet. Rien n'a été créé : demandez votre inscription à "
    "l'assistance de Carnet ou à votre ordre professionnel."
)
SUSPENDED_MESSAGE = _(
    "Votre compte est suspendu. Pour en connaître la raison, contactez l'assistance de Carnet ou votre ordre "
    "professionnel."
)


class PractitionerRefused(Exception):
    """The PSC identity is no active practitioner of Carnet (``message`` says why, translated)."""

    def __init__(self, message: Any, code: str):
        super().__init__(str(code))
        self.message = message
        self.code = code


def rpps_from_claims(claims: Mapping[str, Any]) -> str | None:
    """The RPPS number in PSC's claims ("8" + 11 digits), or None."""
    for name in NATIONAL_ID_CLAIMS:
        value = str(claims.get(name) or "")
        if len(value) == 12 and value.startswith("8") and value.isdigit():
            return value[1:]
    return None


def practitioner_account(claims: Mapping[str, Any]) -> User:
    """The account of the active practitioner PSC attests, or ``PractitionerRefused``."""
    rpps = rpps_from_claims(claims)
    practitioner = (
        Practitioner.objects.select_related("user").filter(rpps=rpps, user__isnull=False).first() if rpps else None
    )
    if practitioner is None or practitioner.user is None or not practitioner.user.is_active:
        logger.info("Pro Santé Connect identity refused: no practitioner account for it.")
        raise PractitionerRefused(UNKNOWN_MESSAGE, "unknown_rpps")
    if not practitioner.is_active:
        logger.info("Pro Santé Connect identity refused: practitioner %s is suspended.", practitioner.pk)
        raise PractitionerRefused(SUSPENDED_MESSAGE, "suspended")
    return practitioner.user
