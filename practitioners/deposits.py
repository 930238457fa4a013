"""The deposit by identity traits: a practitioner feeds a record they have not (or cannot have) opened.

A10 lets a blocked practitioner feed a record, yet A5 forbids telling them that the profile exists when the
identity look-up would not. ``do_deposit_by_identity`` therefore gives one of two answers, never a third:

* ``confirmed``: the look-up (``access_control.api.find_profile``, traced and throttled) finds the profile, so
  the practitioner may know it anyway: the document is deposited and the page names the patient;
* a *receipt* otherwise, worded the same whether the document was deposited (an open profile with exactly
  these traits exists, but the practitioner may not open it: blocked, occupational physician…) or not
  (unknown NIR, other traits, opposed, pending, suspended or closed profile). A deposit that finds no open
  profile is traced as a refused deposit, so that the practitioner's own activity (T3) holds one refused
  look-up and one deposit in both cases.

Everything that could refuse one case and not the other is checked before the look-up, identically for all:
the practitioner (active, not an insurer's physician, A3), and, in the form, the file (type from the bytes,
size), the minor's secret against the birth date *typed* (A9), the title and the type.
See docs/practitioner-portal.md.
"""

import unicodedata
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from access_control import actions as access
from access_control.api import find_profile
from access_control.models import TrailEntry
from access_control.rules import OPEN_STATES, Action, Reason
from access_control.trail import record_entry
from records.identifiers import normalize_nir
from records.models import Document, Profile

from .models import Practitioner


@dataclass(frozen=True)
class DepositOutcome:
    """What a deposit by identity traits tells the practitioner: named (``confirmed``) or a bare receipt.

    ``confirmed``: deposited to ``profile``, which the practitioner may open. Otherwise a receipt only:
    ``document`` is then for the tests and the trail, never for the page (it may be ``None``).
    """

    confirmed: bool
    profile: Profile | None = None
    document: Document | None = None


def _fold(value: str) -> str:
    """Birth names compared without case, accents or punctuation, as ``find_profile`` compares them."""
    decomposed = unicodedata.normalize("NFKD", value or "")
    letters = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.casefold().split())


def _check_practitioner(practitioner: Practitioner) -> Practitioner:
    practitioner = Practitioner.objects.select_related("profession").get(pk=practitioner.pk)
    if not practitioner.is_active or practitioner.is_insurer_physician:  # A1, A3: same answer for every patient
        raise access.IllegalAction(
            _("Vous ne pouvez pas déposer de document dans un dossier."), code="practitioner_not_allowed"
        )
    return practitioner


def document_options(data) -> dict:
    """The keyword arguments of ``do_deposit_document`` from a deposit form's or serializer's cleaned data."""
    return {
        "fileobj": data["file"],
        "document_type": data["document_type"],
        "title": data["title"],
        "care_date": data["care_date"],
        "original_name": data["file"].name or "",
        "hold": data["hold"],
        "minors_secret": data.get("minors_secret") or False,
    }


def do_deposit_by_identity(
    practitioner: Practitioner,
    *,
    nir: str,
    birth_date: date,
    birth_name: str,
    fileobj,
    document_type,
    title: str,
    care_date: date | None = None,
    original_name: str = "",
    hold: bool = False,
    minors_secret: bool = False,
    client_address: str | None = None,
) -> DepositOutcome:
    """A10 with A5's no-oracle: see the module docstring. ``LookupThrottled`` propagates (A11)."""
    practitioner = _check_practitioner(practitioner)
    options = {
        "actor": practitioner,
        "fileobj": fileobj,
        "document_type": document_type,
        "title": title,
        "care_date": care_date,
        "original_name": original_name,
        "hold": hold,
        "minors_secret": minors_secret,
    }
    profile = find_profile(
        practitioner, nir=nir, birth_date=birth_date, birth_name=birth_name, client_address=client_address
    )
    if profile is not None:
        document = access.do_deposit_document(profile, **options)
        return DepositOutcome(confirmed=True, profile=profile, document=document)

    # Not findable by this practitioner: deposit only to an open profile with exactly these traits (A10).
    candidate = Profile.objects.filter(nir=normalize_nir(nir)).only("pk", "birth_date", "birth_name", "state").first()
    if candidate is None:
        reason = Reason.NOT_FOUND
    elif candidate.birth_date != birth_date or _fold(birth_name) != _fold(candidate.birth_name):
        reason = Reason.IDENTITY_MISMATCH
    elif candidate.state not in OPEN_STATES:
        reason = Reason.PROFILE_STATE
    else:
        try:
            document = access.do_deposit_document(candidate, **options)
        except access.IllegalAction:
            reason = Reason.PROFILE_STATE  # closed or suspended between the look-up and the deposit
        else:
            return DepositOutcome(confirmed=False, document=document)
    with transaction.atomic():
        record_entry(
            profile=candidate if reason != Reason.NOT_FOUND else None,
            action=Action.DEPOSIT,
            actor=practitioner,
            outcome=TrailEntry.Outcome.DENIED,
            reason=reason,
            client_address=client_address,
        )  # T1: the refused deposit is traced like the refused look-up before it
    return DepositOutcome(confirmed=False)
