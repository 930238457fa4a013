"""The steps every lifecycle change shares (rules L5, L9, L10, T1).

Refusals, the profile lock, the trail entry of a transition, the representation check and the closure itself.

The lifecycle actions (``records.actions``), the scheduled rules (``records.lifecycle_jobs``) and the bulk
enrolment (``records.enrolment``) build on these, so that a refusal, a trail detail or a closure is written in one
place. Every function here runs inside the caller's transaction.
"""

from datetime import date, datetime

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from access_control.models import TrailEntry
from access_control.trail import record_entry
from notifications.models import Notice
from notifications.outbox import queue_notice

from . import lifecycle
from .actors import Actor
from .lifecycle import ActorNotAllowed, IllegalTransition, TrailAction
from .models import Profile

State = Profile.State


def require_actor(allowed: bool) -> None:
    """L9: refuse the action, changing nothing, when the actor may not perform it."""
    if not allowed:
        raise ActorNotAllowed(
            _("Vous n'êtes pas autorisé à effectuer cette opération sur ce profil."), code="actor_not_allowed"
        )


def refuse(message, code: str, **params) -> IllegalTransition:
    """L9: the error of a refused transition, with its translated message (raise it)."""
    return IllegalTransition(message, code=code, params=params or None)


def wrong_state(profile: Profile) -> IllegalTransition:
    return refuse(
        _("Opération impossible : ce profil est dans l'état « %(state)s »."),
        "illegal_state",
        state=profile.get_state_display(),
    )


def format_day(moment: datetime) -> str:
    """A date as refusals and notices show it (local time, the language's date format)."""
    return date_format(timezone.localtime(moment).date(), "DATE_FORMAT")


def lock_profile(profile: Profile) -> Profile:
    """The profile's row, locked for the rest of the transaction and read afresh."""
    return Profile.objects.select_for_update().get(pk=profile.pk)


def trace_transition(
    profile: Profile | None,
    action: str,
    actor: Actor | None,
    *,
    old: str = "",
    new: str = "",
    reason: str = "",
    detail: str = "",
) -> TrailEntry:
    """T1: the lifecycle trail entry; a change of state is written ``detail="<old>-><new>"``."""
    if old or new:
        detail = f"{old}->{new}"
    return record_entry(profile=profile, action=action, actor=actor, detail=detail, reason=reason)


def check_representation(minor_birth_date: date, representative: Profile, minor_pk: int | None) -> None:
    """L10: a minor's profile is managed by an adult whose own profile is usable."""
    if not lifecycle.is_minor(minor_birth_date):
        raise refuse(_("Un représentant légal ne peut être désigné que pour un mineur."), "not_a_minor")
    if representative.pk == minor_pk or lifecycle.is_minor(representative.birth_date):
        raise refuse(_("Le représentant légal doit être majeur."), "representative_minor")
    if representative.state in (State.CLOSED, State.OPPOSED) or representative.deceased_at is not None:
        raise refuse(
            _("Le profil du représentant légal est clôturé ou n'a pas été créé : il ne peut pas représenter."),
            "representative_unusable",
        )


def close_locked_profile(profile: Profile, *, actor: Actor | None, reason: str, now: datetime) -> Profile:
    """L5, L7: close a locked profile whose closure was checked; archived, traced and the patient told."""
    old = profile.state
    profile.state = State.CLOSED
    profile.closed_at = now
    profile.archive_until = lifecycle.archive_end(now)  # L5: archived 10 years
    profile.closure_reason = reason
    profile.deletion_requested_at = None
    profile.save(update_fields=["state", "closed_at", "archive_until", "closure_reason", "deletion_requested_at"])
    entry = trace_transition(profile, TrailAction.CLOSURE, actor, old=old, new=State.CLOSED, reason=reason)
    queue_notice(profile, Notice.Kind.CLOSURE, trail_entry=entry)
    return profile
