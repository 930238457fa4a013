"""Staff actions on the practitioner directory: suspension, reinstatement, markers, directory import.

Each action takes the staff member as ``actor``, owns its durable transaction, locks what it changes and writes a
trail entry (T1) in the national chain (``record_entry(profile=None, …)``): these changes concern no
patient, but they decide who may open records (A1, A3, A7), so they are traced like the rest. Refusals raise
``PractitionerActionError`` (a ``ValidationError`` with a French message) and change nothing.
"""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from access_control.trail import record_entry
from records.actors import Actor, is_staff

from .models import Practitioner, Profession

# Trail ``action`` values of these changes.
SUSPENDED = "practitioner_suspended"
REINSTATED = "practitioner_reinstated"
MARKERS = "practitioner_markers"
DIRECTORY_IMPORT = "directory_import"

MARKER_FIELDS = ("is_samu_regulator", "is_occupational_physician", "is_insurer_physician")
# Fields the national extract sets; status, markers, e-mail and account are Carnet's own and never imported.
DIRECTORY_FIELDS = (
    "title",
    "last_name",
    "first_name",
    "profession_id",
    "specialty",
    "practice_address",
    "practice_postal_code",
    "practice_city",
)


class PractitionerActionError(ValidationError):
    """A directory action refused (wrong state, missing reason, not staff). Nothing was changed."""


def _require_staff(actor: Actor | None) -> None:
    if not is_staff(actor):
        raise PractitionerActionError(
            _("Seul un agent de l'Assurance Maladie peut modifier l'annuaire."), code="actor_not_allowed"
        )


def _lock(practitioner: Practitioner) -> Practitioner:
    return Practitioner.objects.select_for_update().select_related("profession").get(pk=practitioner.pk)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise PractitionerActionError(_("Indiquez le motif."), code="reason_required")
    return reason[:64]  # the trail keeps a short motive


def do_suspend_practitioner(practitioner: Practitioner, *, actor: Actor, reason: str) -> Practitioner:
    """Suspend a practitioner on a decision of the order or of the health insurance.

    They can no longer sign in nor open any record; their open sessions end at their next request.
    """
    _require_staff(actor)
    reason = _reason(reason)
    with transaction.atomic(durable=True):
        practitioner = _lock(practitioner)
        if practitioner.status == Practitioner.Status.SUSPENDED:
            raise PractitionerActionError(_("Ce professionnel est déjà suspendu."), code="already_suspended")
        practitioner.status = Practitioner.Status.SUSPENDED
        practitioner.save(update_fields=["status"])
        record_entry(profile=None, action=SUSPENDED, actor=actor, detail=f"rpps {practitioner.rpps}", reason=reason)
    return practitioner


def do_reinstate_practitioner(practitioner: Practitioner, *, actor: Actor, reason: str) -> Practitioner:
    """Lift a practitioner's suspension."""
    _require_staff(actor)
    reason = _reason(reason)
    with transaction.atomic(durable=True):
        practitioner = _lock(practitioner)
        if practitioner.status != Practitioner.Status.SUSPENDED:
            raise PractitionerActionError(_("Ce professionnel n'est pas suspendu."), code="not_suspended")
        practitioner.status = Practitioner.Status.ACTIVE
        practitioner.save(update_fields=["status"])
        record_entry(profile=None, action=REINSTATED, actor=actor, detail=f"rpps {practitioner.rpps}", reason=reason)
    return practitioner


def check_markers(*, is_samu_regulator: bool, is_occupational_physician: bool, is_insurer_physician: bool) -> None:
    """An insurer's physician has no access at all (A3): no other marker may give them one."""
    if is_insurer_physician and (is_samu_regulator or is_occupational_physician):
        raise PractitionerActionError(
            _("Un médecin conseil ou d'assurance n'a aucun accès (A3) : il ne peut pas porter un autre marqueur."),
            code="markers_conflict",
        )


def do_set_practitioner_markers(
    practitioner: Practitioner,
    *,
    actor: Actor,
    durable: bool = True,
    is_samu_regulator: bool,
    is_occupational_physician: bool,
    is_insurer_physician: bool,
) -> Practitioner:
    """Set the SAMU regulator (A7, centre 15), occupational physician and insurer physician (A3) markers."""
    _require_staff(actor)
    wanted = {
        "is_samu_regulator": bool(is_samu_regulator),
        "is_occupational_physician": bool(is_occupational_physician),
        "is_insurer_physician": bool(is_insurer_physician),
    }
    check_markers(**wanted)
    with transaction.atomic(durable=durable):
        practitioner = _lock(practitioner)
        changed = [name for name, value in wanted.items() if getattr(practitioner, name) != value]
        if not changed:
            return practitioner
        for name in changed:
            setattr(practitioner, name, wanted[name])
        practitioner.save(update_fields=changed)
        detail = f"rpps {practitioner.rpps}: " + " ".join(f"{name}={int(wanted[name])}" for name in MARKER_FIELDS)
        record_entry(profile=None, action=MARKERS, actor=actor, detail=detail)
    return practitioner


@dataclass
class DirectoryEntry:
    """One validated line of the national extract (``practitioners.directory``)."""

    line: int
    rpps: str
    title: str
    last_name: str
    first_name: str
    profession_code: str
    profession_label: str
    specialty: str
    practice_address: str
    practice_postal_code: str
    practice_city: str


@dataclass
class DirectoryChunkOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    new_professions: list[str] = field(default_factory=list)


def do_import_directory_entries(entries: list[DirectoryEntry], *, actor: Actor) -> DirectoryChunkOutcome:
    """Create or update in place the practitioners of one chunk of the extract (idempotent).

    A practitioner is found by RPPS; only the directory's own fields change (never status, markers, e-mail or
    account). An unknown profession code creates the profession, with no reading right until the matrix
    grants one (A2 default-deny). One trail entry per chunk that changed something.
    """
    _require_staff(actor)
    outcome = DirectoryChunkOutcome()
    with transaction.atomic(durable=True):
        codes = {entry.profession_code: entry.profession_label for entry in entries}
        professions = {p.code: p for p in Profession.objects.filter(code__in=codes)}
        for code in sorted(codes.keys() - professions.keys()):
            label = codes[code] or code
            professions[code] = Profession.objects.create(code=code, label_fr=label, label_en=label)
            outcome.new_professions.append(code)
        existing = {
            p.rpps: p
            for p in Practitioner.objects.select_for_update()
            .filter(rpps__in=[entry.rpps for entry in entries])
            .order_by("pk")
        }
        created, updated = [], []
        for entry in entries:
            values = {
                "title": entry.title,
                "last_name": entry.last_name,
                "first_name": entry.first_name,
                "profession_id": professions[entry.profession_code].pk,
                "specialty": entry.specialty,
                "practice_address": entry.practice_address,
                "practice_postal_code": entry.practice_postal_code,
                "practice_city": entry.practice_city,
            }
            practitioner = existing.get(entry.rpps)
            if practitioner is None:
                created.append(Practitioner(rpps=entry.rpps, **values))
            elif any(getattr(practitioner, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(practitioner, name, value)
                updated.append(practitioner)
            else:
                outcome.unchanged += 1
        Practitioner.objects.bulk_create(created, batch_size=1000)
        Practitioner.objects.bulk_update(updated, DIRECTORY_FIELDS, batch_size=1000)
        outcome.created, outcome.updated = len(created), len(updated)
        if created or updated or outcome.new_professions:
            detail = f"created {len(created)}, updated {len(updated)}, new professions {len(outcome.new_professions)}"
            record_entry(profile=None, action=DIRECTORY_IMPORT, actor=actor, detail=detail)
    return outcome
