"""The patient's health summary (« profil médical »): the actions that keep it, and what a practitioner reads of it.

The holder, or the legal representative managing the profile (L10, ``records.actors.speaks_for``), adds and removes
lines (allergies, ongoing treatments, vaccinations, medical history, emergency contacts) and may mask the
summary from practitioners (A4). Each change is an action with its trail entry in the same transaction (T1); the
trail says which part changed, never what was written (the trail is shown to the treating doctor too). A removed
line is kept with its removal date, so that the data export shows every change.

Practitioners read the summary under the rules of a document of the type ``SUMMARY_DOCUMENT_TYPE`` deposited by
the patient (« Synthèse (déposée par le patient) », ``DOCPAT01``): the record-level rules (L, A3, A5, A7), the
profession's matrix (A2), the summary's mask and category masks (A4, A12; the treating doctor and those granted
their rights still see it). The door is ``access_control.api.health_summary_for_practitioner``.
"""

import re
from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from access_control.trail import record_entry

from .actors import Actor, speaks_for
from .models import HealthSummary, HealthSummaryEntry, Profile

SUMMARY_DOCUMENT_TYPE = "DOCPAT01"  # « Synthèse (déposée par le patient) »: the rules the summary is read under
MAX_ENTRIES = 200  # current lines per profile
# A French number (0 and nine digits) or an international one (+ and 8 to 15 digits), spaces, dots or dashes allowed.
PHONE = re.compile(r"0[1-9][0-9]{8}|\+[1-9][0-9]{7,14}")
PHONE_SEPARATORS = re.compile(r"[ .\-]")
Kind = HealthSummaryEntry.Kind


class SummaryAction(models.TextChoices):
    """Trail ``action`` values of the health summary (T1)."""

    ADD_ENTRY = "summary_add_entry", _("Ajout au profil médical")
    REMOVE_ENTRY = "summary_remove_entry", _("Retrait du profil médical")
    MASK = "summary_mask", _("Masquage du profil médical")  # A4
    UNMASK = "summary_unmask", _("Démasquage du profil médical")  # A4
    READ = "open_health_summary", _("Consultation du profil médical")


class SummaryRefused(ValidationError):
    """The change cannot be made (wrong actor, profile state, invalid line). Nothing was changed."""


@dataclass
class SummarySections:
    """The current lines of a summary, by kind, in the order the pages show them."""

    masked: bool = False
    updated_at: object = None
    sections: list[tuple[str, str, list[HealthSummaryEntry]]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not any(entries for _kind, _label, entries in self.sections)


def current_entries(profile_id: int) -> QuerySet[HealthSummaryEntry]:
    """The lines not removed, by kind then oldest first (one query)."""
    return HealthSummaryEntry.objects.filter(profile_id=profile_id, removed_at__isnull=True).order_by(
        "kind", "added_at", "pk"
    )


def sections_of(summary: HealthSummary | None, entries) -> SummarySections:
    """Group lines by kind, in the order of ``HealthSummaryEntry.Kind``, every kind present even when empty."""
    by_kind: dict[str, list[HealthSummaryEntry]] = {kind: [] for kind in Kind.values}
    for entry in entries:
        by_kind[entry.kind].append(entry)
    return SummarySections(
        masked=summary is not None and summary.masked_at is not None,
        updated_at=summary.updated_at if summary is not None else None,
        sections=[(kind, str(label), by_kind[kind]) for kind, label in Kind.choices],
    )


def summary_for_patient(actor: Actor, profile: Profile) -> SummarySections:
    """What the holder or representative sees and edits (two queries); nothing for anyone else."""
    if not speaks_for(profile, actor):
        return sections_of(None, [])
    summary = HealthSummary.objects.filter(profile_id=profile.pk).first()
    return sections_of(summary, current_entries(profile.pk))


# --- Actions -----------------------------------------------------------------------------------------------------


def _refuse(message, code: str, **params) -> SummaryRefused:
    return SummaryRefused(message, code=code, params=params or None)


def _locked_profile(profile: Profile, actor: Actor) -> Profile:
    """The profile locked, if the actor speaks for it (L10) and it is open or active (L2, L5, L7)."""
    locked = Profile.objects.select_for_update(of=("self",), no_key=True).select_related("legal_representative")
    profile = locked.get(pk=profile.pk)
    if not speaks_for(profile, actor):
        raise _refuse(_("Vous n'êtes pas autorisé à effectuer cette opération sur ce profil."), "actor_not_allowed")
    if profile.state not in (Profile.State.OPEN, Profile.State.ACTIVE):
        raise _refuse(
            _("Opération impossible : ce profil est dans l'état « %(state)s »."),
            "illegal_state",
            state=profile.get_state_display(),
        )
    return profile


def _touch(profile: Profile, now) -> HealthSummary:
    summary, created = HealthSummary.objects.get_or_create(profile=profile, defaults={"updated_at": now})
    if not created:
        summary.updated_at = now
        summary.save(update_fields=["updated_at"])
    return summary


def _clean(kind: str, label: str, detail: str, on_date: date | None, phone: str) -> tuple[str, str, str]:
    if kind not in Kind.values:
        raise _refuse(_("Choisissez une rubrique du profil médical."), "kind_unknown")
    label, detail, phone = (label or "").strip(), (detail or "").strip(), (phone or "").strip()
    if not label:
        raise _refuse(_("Indiquez un libellé."), "label_missing")
    if len(label) > 200 or len(detail) > 300:
        raise _refuse(_("Le texte est trop long (200 caractères pour le libellé, 300 pour les précisions)."), "long")
    if on_date is not None and on_date > timezone.localdate():
        raise _refuse(_("La date ne peut pas être dans le futur."), "date_future")
    if kind == Kind.EMERGENCY_CONTACT:
        if len(phone) > 20 or not PHONE.fullmatch(PHONE_SEPARATORS.sub("", phone)):
            raise _refuse(_("Indiquez un numéro de téléphone valide pour la personne à prévenir."), "phone_invalid")
    elif phone:
        raise _refuse(_("Seules les personnes à prévenir ont un numéro de téléphone."), "phone_unexpected")
    return label, detail, phone


def do_add_health_summary_entry(
    profile: Profile,
    *,
    kind: str,
    label: str,
    detail: str = "",
    on_date: date | None = None,
    phone: str = "",
    actor: Actor,
) -> HealthSummaryEntry:
    """Add one line to the summary (T1: the trail names the part, not the content)."""
    label, detail, phone = _clean(kind, label, detail, on_date, phone)
    with transaction.atomic(durable=True):
        profile = _locked_profile(profile, actor)
        if current_entries(profile.pk).count() >= MAX_ENTRIES:
            raise _refuse(
                _("Le profil médical compte déjà %(count)s lignes : retirez-en avant d'en ajouter."),
                "too_many",
                count=MAX_ENTRIES,
            )
        now = timezone.now()
        entry = HealthSummaryEntry.objects.create(
            profile=profile, kind=kind, label=label, detail=detail, on_date=on_date, phone=phone, added_at=now
        )
        _touch(profile, now)
        record_entry(profile=profile, action=SummaryAction.ADD_ENTRY, actor=actor, detail=f"{kind}#{entry.pk}")
    return entry


def do_remove_health_summary_entry(profile: Profile, entry_id: int, *, actor: Actor) -> HealthSummaryEntry:
    """Remove one current line (kept with its removal date for the export); another profile's line is not found."""
    with transaction.atomic(durable=True):
        profile = _locked_profile(profile, actor)
        entry = (
            HealthSummaryEntry.objects.select_for_update()
            .filter(pk=entry_id, profile_id=profile.pk, removed_at__isnull=True)
            .first()
        )
        if entry is None:
            raise _refuse(_("Cette ligne du profil médical est introuvable."), "entry_not_found")
        now = timezone.now()
        entry.removed_at = now
        entry.save(update_fields=["removed_at"])
        _touch(profile, now)
        record_entry(profile=profile, action=SummaryAction.REMOVE_ENTRY, actor=actor, detail=f"{entry.kind}#{entry.pk}")
    return entry


def do_mask_health_summary(profile: Profile, *, masked: bool, actor: Actor) -> HealthSummary:
    """A4: hide the summary from practitioners but the treating doctor and those granted their rights, or show it.

    Like masking a document, for an activated profile only (L4); unmasking is always allowed. Idempotent.
    """
    with transaction.atomic(durable=True):
        profile = _locked_profile(profile, actor)
        if masked and profile.state != Profile.State.ACTIVE:
            raise _refuse(
                _("Cette opération n'est possible que sur un profil activé par son titulaire."), "profile_not_activated"
            )
        now = timezone.now()
        summary, _created = HealthSummary.objects.select_for_update().get_or_create(
            profile=profile, defaults={"updated_at": now}
        )
        if (summary.masked_at is not None) == masked:
            return summary
        summary.masked_at = now if masked else None
        summary.save(update_fields=["masked_at"])
        record_entry(profile=profile, action=SummaryAction.MASK if masked else SummaryAction.UNMASK, actor=actor)
    return summary


def export_of(profile: Profile) -> dict:
    """The summary for the data export: every line ever added, with its dates, and the mask (all changes)."""
    summary = HealthSummary.objects.filter(profile_id=profile.pk).first()
    entries = HealthSummaryEntry.objects.filter(profile_id=profile.pk).order_by("added_at", "pk")
    return {
        "masked_at": summary.masked_at.isoformat() if summary and summary.masked_at else None,
        "updated_at": summary.updated_at.isoformat() if summary else None,
        "entries": [
            {
                "kind": entry.kind,
                "label": entry.label,
                "detail": entry.detail,
                "date": entry.on_date.isoformat() if entry.on_date else None,
                "phone": entry.phone,
                "added_at": entry.added_at.isoformat(),
                "removed_at": entry.removed_at.isoformat() if entry.removed_at else None,
            }
            for entry in entries.iterator()
        ],
    }
