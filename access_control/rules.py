"""The vocabulary of access control and the record-level decision (A1, A3, A5, A7), in one place.

``access_control.api`` gathers the facts about one practitioner and one profile in a single query and asks
``record_denial`` whether the record may be opened; the same precedence is written as SQL conditions in
``fast_sql.openable_profiles`` for the document listing. Reason codes are kept for the trail only: the
practitioner is shown ``message_for(reason)``, which is the same generic sentence for every refusal that
would tell them something about the patient (no oracle, A5).

Order of the checks:

1. the request itself, which does not depend on the patient (the practitioner is in practice, their
   profession reads at least one document type, ``centre_15`` is for SAMU regulators, ``bris_de_glace``
   carries a justification, normal access carries the care-team attestation): answered with a specific
   message, identical for every profile, so it reveals nothing;
2. the rules' precedence: profile state (L) -> forbidden actor (A3) -> block (A5) -> emergency
   opt-out (A7). The first three get the generic "no such profile" message. The opt-out is told to the
   practitioner as such: it comes after every rule that hides the profile, so the practitioner could already
   open the record normally (the identity traits matched, A11) and learns only that emergency access is
   refused, which they need to know to act otherwise (call the patient, use normal access).

The matrix (A2) and the masks (A4, A12) then decide, document by document, what an opened record shows.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import models
from django.utils.translation import gettext_lazy as _

from .models import AccessMode

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

OPEN_STATES = ("open", "active")  # L3, L4: the states in which practitioners read and feed a record (A1, A10)
EMERGENCY_MODES = (AccessMode.BRIS_DE_GLACE, AccessMode.CENTRE_15)


class Action(models.TextChoices):
    """Trail ``action`` values written by access control (T1)."""

    LOOKUP = "lookup_profile", _("Recherche d'un profil")  # A11
    OPEN_RECORD = "open_record", _("Consultation du dossier")  # A1, A7
    OPEN_DOCUMENT = "open_document", _("Ouverture d'un document")
    DEPOSIT = "deposit_document", _("Dépôt d'un document")  # A10
    SUPERSEDE_DOCUMENT = "supersede_document", _("Document remplacé ou retiré par son auteur")  # A10
    DELETE_DOCUMENT = "delete_document", _("Suppression d'un document déposé par le patient")  # A10
    RELEASE_HOLD = "hold_release", _("Document rendu visible au patient")  # A8
    MASK_DOCUMENT = "mask_document", _("Masquage d'un document")  # A4
    UNMASK_DOCUMENT = "unmask_document", _("Démasquage d'un document")  # A4
    MASK_CATEGORY = "mask_category", _("Masquage d'une catégorie de documents")  # A12
    UNMASK_CATEGORY = "unmask_category", _("Démasquage d'une catégorie de documents")  # A12
    BLOCK = "block_practitioner", _("Blocage d'un professionnel")  # A5
    UNBLOCK = "unblock_practitioner", _("Déblocage d'un professionnel")  # A5
    DECLARE_TREATING_DOCTOR = "declare_treating_doctor", _("Déclaration du médecin traitant")  # A6
    REMOVE_TREATING_DOCTOR = "remove_treating_doctor", _("Retrait du médecin traitant")  # A6
    EMERGENCY_OPT_OUT = "emergency_opt_out", _("Choix sur l'accès en urgence")  # A7
    AUTHORISE_OCCUPATIONAL = "authorise_occupational", _("Autorisation du médecin du travail")  # A3
    GRANT_TREATING_RIGHTS = "grant_treating_rights", _("Droits de médecin traitant accordés")  # A4
    REVOKE_TREATING_RIGHTS = "revoke_treating_rights", _("Droits de médecin traitant retirés")  # A4
    REVOKE_OCCUPATIONAL = "revoke_occupational", _("Retrait de l'autorisation du médecin du travail")  # A3
    HIGH_PROFILE = "high_profile", _("Protection des profils sensibles")  # A13
    ACCESS_RULE = "access_rule", _("Modification de la matrice d'accès")  # A2
    REVIEW = "review", _("Revue d'un accès")  # A7, A13
    # Sign-in recovery (accounts.recovery): traced in the patient's chain, or the national one for others.
    PASSWORD_RESET = "password_reset", _("Mot de passe réinitialisé")
    RECOVERY_LETTER = "recovery_letter", _("Code provisoire envoyé par courrier pour retrouver l'accès")
    SECOND_FACTOR_RESET = "second_factor_reset", _("Second facteur réinitialisé")
    LOCKOUT_LIFTED = "lockout_lifted", _("Blocage de connexion levé")


class Reason:
    """Why an access was refused. Written to the trail, never shown as such to the practitioner."""

    PRACTITIONER_INACTIVE = "practitioner_inactive"  # A1
    PROFESSION_NOT_AUTHORISED = "profession_not_authorised"  # A1, A2
    NOT_SAMU_REGULATOR = "not_samu_regulator"  # A7
    JUSTIFICATION_MISSING = "justification_missing"  # A7
    CARE_TEAM_NOT_ATTESTED = "care_team_not_attested"  # A1
    PROFILE_STATE = "profile_state"  # L2, L5, L7
    INSURER_PHYSICIAN = "insurer_physician"  # A3
    OCCUPATIONAL_UNAUTHORISED = "occupational_unauthorised"  # A3
    BLOCKED = "blocked"  # A5
    EMERGENCY_OPT_OUT = "emergency_opt_out"  # A7
    NOT_FOUND = "not_found"  # A11: no profile with this NIR
    IDENTITY_MISMATCH = "identity_mismatch"  # A11: the NIR exists, the other traits differ
    LOOKUP_THROTTLED = "lookup_throttled"  # A11
    DOCUMENT_NOT_FOUND = "document_not_found"
    DOCUMENT_NOT_VISIBLE = "document_not_visible"  # A2, A4, A12, A10 (deleted)
    RECORD_NOT_OPENED = "record_not_opened"  # open_document without a current opening in that mode
    PROVISIONAL_CODE = "provisional_code"  # second factor reset with a provisional code sent by post
    STAFF_DESK = "staff_desk"  # second factor reset or lock-out lifted by staff at the sign-in desk


GENERIC_REFUSAL = _("Aucun dossier accessible ne correspond à ces informations.")

_MESSAGES = {
    Reason.PRACTITIONER_INACTIVE: _(
        "Votre inscription de professionnel de santé n'est pas en exercice : l'accès aux dossiers est fermé."
    ),
    Reason.PROFESSION_NOT_AUTHORISED: _("Votre profession n'a accès à aucun type de document du dossier."),
    Reason.NOT_SAMU_REGULATOR: _("L'accès « centre 15 » est réservé aux médecins régulateurs du SAMU."),
    Reason.JUSTIFICATION_MISSING: _("L'accès en bris de glace exige une justification écrite."),
    Reason.CARE_TEAM_NOT_ATTESTED: _(
        "Attestez que vous faites partie de l'équipe de soins du patient pour ouvrir son dossier."
    ),
    Reason.EMERGENCY_OPT_OUT: _(
        "Ce patient a refusé l'accès en urgence à son dossier : seul l'accès normal est possible."
    ),
}


def message_for(reason: str) -> "StrOrPromise":
    """What the practitioner is told: a specific message only where it reveals nothing about the patient."""
    return _MESSAGES.get(reason, GENERIC_REFUSAL)


@dataclass(frozen=True)
class RecordFacts:
    """What the record-level decision depends on, read from the database in one query."""

    practitioner_active: bool
    profession_authorised: bool
    samu_regulator: bool
    insurer_physician: bool
    occupational_physician: bool
    profile_state: str
    occupational_authorised: bool
    blocked: bool
    emergency_opt_out: bool


_MODES = frozenset(AccessMode.values)  # ``AccessMode.values`` builds its list anew on every read


def check_mode(mode: str) -> str:
    if mode not in _MODES:
        raise ValueError(f"Unknown access mode {mode!r}")
    return mode


def practitioner_denial(facts: RecordFacts, mode: str) -> str:
    """Checks on the practitioner alone (A1, A2, A7): the same answer whatever the profile."""
    if not facts.practitioner_active:
        return Reason.PRACTITIONER_INACTIVE
    if not facts.profession_authorised:
        return Reason.PROFESSION_NOT_AUTHORISED
    if mode == AccessMode.CENTRE_15 and not facts.samu_regulator:
        return Reason.NOT_SAMU_REGULATOR
    return ""


def request_denial(mode: str, *, justification: str, attests_care_team: bool) -> str:
    """Checks on the request alone (A1 attestation, A7 justification)."""
    if mode == AccessMode.BRIS_DE_GLACE and not justification.strip():
        return Reason.JUSTIFICATION_MISSING
    if mode == AccessMode.NORMAL and not attests_care_team:
        return Reason.CARE_TEAM_NOT_ATTESTED
    return ""


def profile_denial(facts: RecordFacts, mode: str) -> str:
    """The rules' precedence for this practitioner and profile: L -> A3 -> A5 -> A7."""
    if facts.profile_state not in OPEN_STATES:
        return Reason.PROFILE_STATE
    if facts.insurer_physician:
        return Reason.INSURER_PHYSICIAN
    if facts.occupational_physician and not facts.occupational_authorised:
        return Reason.OCCUPATIONAL_UNAUTHORISED
    if facts.blocked:
        return Reason.BLOCKED
    if mode in EMERGENCY_MODES and facts.emergency_opt_out:
        return Reason.EMERGENCY_OPT_OUT
    return ""


def record_denial(facts: RecordFacts, mode: str, *, justification: str = "", attests_care_team: bool = True) -> str:
    """The reason the record may not be opened in this mode, or ``""`` when it may."""
    return (
        practitioner_denial(facts, mode)
        or request_denial(mode, justification=justification, attests_care_team=attests_care_team)
        or profile_denial(facts, mode)
    )
