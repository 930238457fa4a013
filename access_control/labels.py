"""What staff read for a trail entry's codes (issue 18): its action, its detail and its reason, translated.

The trail keeps codes (``deposit_document``, ``open->active``, ``identity_checked``): they are hashed into the
chain (T1) and never change. Pages show these labels instead; an unknown code is shown as written.
"""

from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _

from records.account_actions import PortalAction
from records.lifecycle import TrailAction
from records.models import Profile

from .models import AccessMode
from .rules import Action, Reason

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

# Actions written outside the three TextChoices (the staff's and the directory's).
OTHER_ACTIONS: dict[str, "StrOrPromise"] = {
    "notice_resent": _("Avis renvoyé"),
    "batch_handed": _("Lot d'impression remis au routeur"),
    "letter_downloaded": _("Lettre téléchargée"),
    "api_token_revoked": _("Jeton d'API révoqué"),
    "practitioner_suspended": _("Professionnel suspendu"),
    "practitioner_reinstated": _("Professionnel rétabli"),
    "practitioner_markers": _("Rôles du professionnel modifiés"),
    "directory_import": _("Import de l'annuaire des professionnels"),
}
ACTIONS: dict[str, "StrOrPromise"] = {
    **dict(Action.choices),
    **dict(TrailAction.choices),
    **dict(PortalAction.choices),
    **OTHER_ACTIONS,
}
REASONS: dict[str, "StrOrPromise"] = {
    Reason.PRACTITIONER_INACTIVE: _("professionnel non actif"),
    Reason.PROFESSION_NOT_AUTHORISED: _("profession non autorisée"),
    Reason.NOT_SAMU_REGULATOR: _("pas régulateur du SAMU"),
    Reason.JUSTIFICATION_MISSING: _("justification manquante"),
    Reason.CARE_TEAM_NOT_ATTESTED: _("équipe de soins non attestée"),
    Reason.PROFILE_STATE: _("état du profil"),
    Reason.INSURER_PHYSICIAN: _("médecin de l'assurance maladie"),
    Reason.OCCUPATIONAL_UNAUTHORISED: _("médecin du travail non autorisé"),
    Reason.BLOCKED: _("professionnel bloqué par le patient"),
    Reason.EMERGENCY_OPT_OUT: _("accès en urgence refusé par le patient"),
    Reason.NOT_FOUND: _("profil introuvable"),
    Reason.IDENTITY_MISMATCH: _("traits d'identité différents"),
    Reason.LOOKUP_THROTTLED: _("trop de recherches"),
    Reason.DOCUMENT_NOT_FOUND: _("document introuvable"),
    Reason.DOCUMENT_NOT_VISIBLE: _("document non visible"),
    Reason.RECORD_NOT_OPENED: _("dossier non ouvert"),
    Reason.PROVISIONAL_CODE: _("code provisoire"),
    Reason.STAFF_DESK: _("au guichet"),
    "identity_checked": _("identité vérifiée au guichet"),
    "legal_representative": _("par le représentant légal"),
    "representative_purged": _("représentant légal supprimé"),
}
STATES: dict[str, "StrOrPromise"] = dict(Profile.State.choices)
MODES: dict[str, "StrOrPromise"] = dict(AccessMode.choices)


def action_label(code: str) -> "StrOrPromise":
    return ACTIONS.get(code, code)


def reason_label(code: str) -> "StrOrPromise":
    return REASONS.get(code, code)


def detail_label(detail: str) -> str:
    """A change of state (``open->active``) as « Ouvert → Activé »; any other detail as written."""
    old, arrow, new = detail.partition("->")
    if arrow and old in STATES and new in STATES:
        return f"{STATES[old]} → {STATES[new]}"
    return detail
