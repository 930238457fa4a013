"""Lifecycle actions of a profile (rules L1-L10).

Each action takes its actor explicitly: a ``records.User`` (staff or patient), a ``Practitioner`` (never allowed
here) or ``None`` for the system (roster import, scheduler, or the anonymous holder of a provisional code).
Each owns its transaction, locks the profile (``select_for_update``), checks everything before it writes,
writes the trail entry (T1, ``TrailAction`` values of ``records.lifecycle`` with ``detail="<from>-><to>"``)
and queues the patient notice (N5) in that same transaction. A refused action raises ``IllegalTransition``
(or its subclasses) and changes nothing (L9).

Scheduled rules (called by ``records.tasks``): ``open_due_profiles`` (L3), ``close_expired_suspensions`` (L7),
``purge_due_profiles`` (L5, T4).

Early deletion (L5): the request brings the purge date forward to ``requested_at + CARNET_EARLY_DELETION_DAYS``
(stored in ``archive_until``, so one indexed query finds every due purge); the patient is told at request
time, by a ``DELETION_DONE`` notice, that the data will be deleted on that date, and may re-open the profile
until then. The purge job runs hourly, so the deletion happens within the hour after that date.
"""

import logging
import uuid
from collections.abc import Iterator
from datetime import date, datetime

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from access_control.models import TrailEntry
from access_control.trail import record_entry
from notifications.models import Notice
from notifications.outbox import queue_notice

from . import crypto, lifecycle, storage
from .identifiers import validate_nir
from .lifecycle import ActorNotAllowed, IllegalTransition, InvalidProvisionalCode, TrailAction
from .models import Profile, User

logger = logging.getLogger(__name__)

State = Profile.State
ClosureReason = Profile.ClosureReason
CHUNK_SIZE = 500  # profiles per transaction in the scheduled openings

_CLOSABLE = (State.OPEN, State.ACTIVE, State.SUSPENDED)  # L5
_SUSPENDABLE = (State.OPEN, State.ACTIVE)  # L7


# --- Helpers --------------------------------------------------------------------------------------------


def _is_staff(actor) -> bool:
    return isinstance(actor, User) and actor.kind == User.Kind.STAFF and actor.is_active


def _speaks_for(profile: Profile, actor) -> bool:
    """The holder, or the legal representative managing the profile from their own account (L10)."""
    if not isinstance(actor, User) or actor.kind != User.Kind.PATIENT or not actor.is_active:
        return False
    if profile.user_id is not None and profile.user_id == actor.pk:
        return True
    representative = profile.legal_representative
    return representative is not None and representative.user_id == actor.pk


def _require(allowed: bool) -> None:
    if not allowed:
        raise ActorNotAllowed(
            _("Vous n'êtes pas autorisé à effectuer cette opération sur ce profil."), code="actor_not_allowed"
        )


def _refuse(message, code: str, **params):
    return IllegalTransition(message, code=code, params=params or None)


def _wrong_state(profile: Profile) -> IllegalTransition:
    return _refuse(
        _("Opération impossible : ce profil est dans l'état « %(state)s »."),
        "illegal_state",
        state=profile.get_state_display(),
    )


def _day(moment: datetime) -> str:
    return date_format(timezone.localtime(moment).date(), "DATE_FORMAT")


def _due_id_chunks(due) -> Iterator[list[int]]:
    """The ids of a scheduled rule's due profiles in pk order, CHUNK_SIZE at a time (keyset walk, no OFFSET)."""
    last_pk = 0
    while True:
        ids = list(due.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:CHUNK_SIZE])
        if not ids:
            return
        last_pk = ids[-1]
        yield ids


def _lock(profile: Profile) -> Profile:
    return Profile.objects.select_for_update().get(pk=profile.pk)


def _trail(profile: Profile | None, action: str, actor, *, old: str = "", new: str = "", reason: str = "", detail=""):
    if old or new:
        detail = f"{old}->{new}"
    return record_entry(profile=profile, action=action, actor=actor, detail=detail, reason=reason)


def _resumed_state(profile: Profile) -> str:
    """L6/L7: back to active when the profile had been activated, else open (never activated)."""
    return State.ACTIVE if profile.activated_at is not None else State.OPEN


def _seal_code(code: str) -> bytes:
    return crypto.seal(code.encode("ascii"))


def _check_representation(minor_birth_date: date, representative: Profile, minor_pk: int | None) -> None:
    """L10: a minor's profile is managed by an adult whose own profile is usable."""
    if not lifecycle.is_minor(minor_birth_date):
        raise _refuse(_("Un représentant légal ne peut être désigné que pour un mineur."), "not_a_minor")
    if representative.pk == minor_pk or lifecycle.is_minor(representative.birth_date):
        raise _refuse(_("Le représentant légal doit être majeur."), "representative_minor")
    if representative.state in (State.CLOSED, State.OPPOSED) or representative.deceased_at is not None:
        raise _refuse(
            _("Le profil du représentant légal est clôturé ou n'a pas été créé : il ne peut pas représenter."),
            "representative_unusable",
        )


# --- L1: enrolment and the provisional code -------------------------------------------------------------


def do_enrol_profile(
    *,
    nir: str,
    birth_name: str,
    first_names: str,
    birth_date: date,
    sex: str,
    usual_name: str = "",
    birth_place_code: str = "",
    address_complement: str = "",
    address_building: str = "",
    address_street: str = "",
    address_locality: str = "",
    postal_code: str = "",
    city: str = "",
    country: str = "FR",
    email: str = "",
    preferred_language: str = "fr",
    legal_representative: Profile | None = None,
    actor,
) -> tuple[Profile, str | None]:
    """L1: create a pending profile from the roster and send the pre-opening notice with a provisional code.

    Returns ``(profile, code)``. Idempotent on the NIR: a known NIR returns the existing profile, unchanged,
    and ``None`` for the code (use ``do_reissue_provisional_code`` to send a new one).
    """
    _require(actor is None or _is_staff(actor))
    nir = validate_nir(nir)
    existing = Profile.objects.filter(nir=nir).first()
    if existing is not None:
        return existing, None
    if birth_date > timezone.localdate():
        raise ValidationError(_("La date de naissance est dans le futur."), code="birth_date_future")
    now = timezone.now()
    code = lifecycle.generate_provisional_code()
    profile = Profile(
        nir=nir,
        birth_name=birth_name,
        usual_name=usual_name,
        first_names=first_names,
        birth_date=birth_date,
        sex=sex,
        birth_place_code=birth_place_code,
        address_complement=address_complement,
        address_building=address_building,
        address_street=address_street,
        address_locality=address_locality,
        postal_code=postal_code,
        city=city,
        country=country,
        email=email,
        preferred_language=preferred_language,
        state=State.PENDING,
        notice_sent_at=now,
        provisional_code_hash=lifecycle.hash_provisional_code(code),
        provisional_code_expires_at=lifecycle.provisional_code_expiry(now),
    )
    profile.full_clean(exclude=["legal_representative", "user", "treating_doctor"], validate_unique=False)
    try:
        with transaction.atomic():
            if legal_representative is not None:
                legal_representative = _lock(legal_representative)
                _check_representation(birth_date, legal_representative, None)
                profile.legal_representative = legal_representative
            profile.save(force_insert=True)
            entry = _trail(profile, TrailAction.ENROL, actor, new=State.PENDING)
            if legal_representative is not None:
                _trail(profile, TrailAction.LEGAL_REPRESENTATIVE, actor, detail="set")
            queue_notice(profile, Notice.Kind.PRE_OPENING, trail_entry=entry, sealed_payload=_seal_code(code))
    except IntegrityError:
        existing = Profile.objects.filter(nir=nir).first()
        if existing is None:
            raise
        return existing, None  # a concurrent enrolment of the same NIR won the race
    return profile, code


def do_reissue_provisional_code(profile: Profile, *, actor) -> tuple[Profile, str]:
    """L1: replace the provisional code (the old one stops working) and send it in a new notice.

    The opposition window still runs from the first notice (L2).
    """
    _require(actor is None or _is_staff(actor))
    with transaction.atomic():
        profile = _lock(profile)
        if profile.state not in (State.PENDING, State.OPEN):
            raise _wrong_state(profile)
        code = lifecycle.generate_provisional_code()
        profile.provisional_code_hash = lifecycle.hash_provisional_code(code)
        profile.provisional_code_expires_at = lifecycle.provisional_code_expiry(timezone.now())
        profile.save(update_fields=["provisional_code_hash", "provisional_code_expires_at"])
        entry = _trail(profile, TrailAction.PROVISIONAL_CODE_REISSUED, actor)
        queue_notice(profile, Notice.Kind.PRE_OPENING, trail_entry=entry, sealed_payload=_seal_code(code))
    return profile, code


def check_provisional_code(profile: Profile, code: str | None) -> bool:
    """L1: the code is the profile's current one and has not expired (constant-time comparison)."""
    return lifecycle.check_provisional_code(profile, code)


def _check_code_expiry(profile: Profile, now: datetime) -> None:
    expires_at = profile.provisional_code_expires_at
    if expires_at is None or now >= expires_at:
        raise _refuse(
            _("Ce code provisoire a expiré : demandez l'envoi d'un nouveau code."), "provisional_code_expired"
        )


# --- L2, L3: opposition and opening ---------------------------------------------------------------------


def do_record_opposition(
    profile: Profile, *, actor, provisional_code: str | None = None, identity_checked: bool = False
) -> Profile:
    """Record the person's opposition to the creation of their profile (L2); the profile will never open.

    The person acts with the provisional code, or staff act on their behalf after checking their identity, during
    the opposition window.
    """
    with transaction.atomic():
        profile = _lock(profile)
        now = timezone.now()
        if provisional_code is not None:
            _require(actor is None or isinstance(actor, User))
            # The code is checked before anything about the profile is said (no oracle on the NIR).
            if not lifecycle.provisional_code_matches(provisional_code, profile.provisional_code_hash):
                raise InvalidProvisionalCode()
            via = "provisional_code"
        else:
            _require(_is_staff(actor) and identity_checked)
            via = "identity_checked"
        if profile.state == State.OPPOSED:
            raise _refuse(_("Une opposition est déjà enregistrée pour ce profil."), "already_opposed")
        if profile.state != State.PENDING:
            raise _refuse(
                _("Le délai d'opposition est terminé : le profil a été ouvert. Vous pouvez demander sa clôture."),
                "opposition_window_closed",
            )
        deadline = lifecycle.opposition_deadline(profile)
        if deadline is None or now >= deadline:
            raise _refuse(
                _("Le délai d'opposition s'est terminé le %(date)s. Vous pouvez demander la clôture du profil."),
                "opposition_window_closed",
                date=_day(deadline or now),
            )
        if via == "provisional_code":
            _check_code_expiry(profile, now)
        profile.state = State.OPPOSED
        profile.opposed_at = now
        profile.save(update_fields=["state", "opposed_at"])
        entry = _trail(profile, TrailAction.OPPOSITION, actor, old=State.PENDING, new=State.OPPOSED, reason=via)
        queue_notice(profile, Notice.Kind.OPPOSITION, trail_entry=entry)
    return profile


def _open_refusal(profile: Profile, now: datetime) -> IllegalTransition | None:
    if profile.state != State.PENDING:
        return _wrong_state(profile)
    deadline = lifecycle.opposition_deadline(profile)
    if deadline is None or now < deadline:
        return _refuse(
            _("Le délai d'opposition court jusqu'au %(date)s : le profil ne peut pas encore être ouvert."),
            "opposition_window_running",
            date=_day(deadline) if deadline else "—",
        )
    return None


def do_open_profile(profile: Profile, *, actor=None) -> Profile:
    """L3: open a pending profile whose opposition window has passed (default-open access, A1)."""
    _require(actor is None or _is_staff(actor))
    with transaction.atomic():
        profile = _lock(profile)
        now = timezone.now()
        refusal = _open_refusal(profile, now)
        if refusal is not None:
            raise refusal
        profile.state = State.OPEN
        profile.opened_at = now
        profile.save(update_fields=["state", "opened_at"])
        _trail(profile, TrailAction.OPENING, actor, old=State.PENDING, new=State.OPEN)
    return profile


def open_due_profiles(now: datetime | None = None) -> int:
    """L3 (scheduled): open every pending profile whose window has passed; returns how many were opened.

    Walks the due ids in pk order, CHUNK_SIZE at a time: one transaction per chunk locks the rows still due
    (skipping rows another transaction holds, e.g. an opposition being recorded: the next run sees them),
    opens them with one UPDATE and writes one trail entry per profile.
    """
    now = now or timezone.now()
    cutoff = lifecycle.opening_cutoff(now)
    due = Profile.objects.filter(state=State.PENDING, notice_sent_at__lte=cutoff)
    opened = 0
    for ids in _due_id_chunks(due):
        with transaction.atomic():
            locked = list(due.filter(pk__in=ids).select_for_update(skip_locked=True).order_by("pk").only("pk"))
            Profile.objects.filter(pk__in=[p.pk for p in locked]).update(state=State.OPEN, opened_at=timezone.now())
            for profile in locked:
                _trail(profile, TrailAction.OPENING, None, old=State.PENDING, new=State.OPEN)
        opened += len(locked)
    return opened


# --- L4: activation -------------------------------------------------------------------------------------


def _check_identity_and_code(profile: Profile, *, nir: str | None, birth_date: date, provisional_code: str) -> None:
    # Every part is evaluated, and one generic error is raised whatever failed (no oracle, L4).
    nir_ok = lifecycle.same_nir(nir, profile.nir) if nir is not None else True
    birth_date_ok = birth_date == profile.birth_date
    code_ok = lifecycle.provisional_code_matches(provisional_code, profile.provisional_code_hash)
    if not (nir_ok and birth_date_ok and code_ok):
        raise InvalidProvisionalCode()


def _activation_refusal(profile: Profile, now: datetime) -> IllegalTransition | None:
    if profile.state == State.OPPOSED:
        return _refuse(_("Une opposition a été enregistrée : ce profil ne peut pas être activé."), "activation_opposed")
    if profile.state == State.ACTIVE or profile.user_id is not None:
        return _refuse(_("Ce profil est déjà activé : connectez-vous."), "already_active")
    if profile.state not in (State.PENDING, State.OPEN):
        return _wrong_state(profile)
    return None


def do_activate_profile(
    profile: Profile,
    *,
    nir: str,
    provisional_code: str,
    birth_date: date,
    password: str,
    email: str,
    actor=None,
) -> User:
    """L4: the holder claims their profile and gets a patient account.

    An open profile, or a pending one during its opposition window: the provisional code is valid for six weeks
    from the notice (L1), the same length as the window, so claiming it early is how the holder accepts the
    profile without waiting for the automatic opening (it opens and activates at once). Opposed, suspended or
    closed profiles cannot be activated.

    Wrong NIR, code or birth date all give the same error. The account's username is a random id, never the
    NIR; the e-mail is stored unverified until the portal verifies it. The second factor is enrolled by the
    portal after this action.
    """
    _require(actor is None)
    with transaction.atomic():
        profile = _lock(profile)
        now = timezone.now()
        _check_identity_and_code(profile, nir=nir, birth_date=birth_date, provisional_code=provisional_code)
        refusal = _activation_refusal(profile, now)
        if refusal is not None:
            raise refusal
        _check_code_expiry(profile, now)
        validate_email(email)
        user = User(username=f"patient-{uuid.uuid4().hex}", kind=User.Kind.PATIENT, email=email)
        validate_password(password, user)
        user.set_password(password)
        user.save(force_insert=True)
        previous_state = profile.state
        profile.user = user
        profile.state = State.ACTIVE
        profile.activated_at = now
        profile.opened_at = profile.opened_at or now
        profile.email = email
        profile.email_verified = False
        profile.provisional_code_hash = ""
        profile.provisional_code_expires_at = None
        profile.save(
            update_fields=[
                "user",
                "state",
                "activated_at",
                "opened_at",
                "email",
                "email_verified",
                "provisional_code_hash",
                "provisional_code_expires_at",
            ]
        )
        _trail(profile, TrailAction.ACTIVATION, user, old=previous_state, new=State.ACTIVE)
    return user


def do_activate_represented_profile(
    profile: Profile, *, provisional_code: str, birth_date: date, actor: User
) -> Profile:
    """Activate a minor's open profile from a legal representative's own account (L4, L10).

    No second login is created: the minor's profile is managed from the representative's account.
    """
    with transaction.atomic():
        profile = _lock(profile)
        representative = profile.legal_representative
        _require(
            isinstance(actor, User)
            and actor.kind == User.Kind.PATIENT
            and representative is not None
            and representative.user_id == actor.pk
        )
        now = timezone.now()
        _check_identity_and_code(profile, nir=None, birth_date=birth_date, provisional_code=provisional_code)
        refusal = _activation_refusal(profile, now)
        if refusal is not None:
            raise refusal
        _check_code_expiry(profile, now)
        profile.state = State.ACTIVE
        profile.activated_at = now
        profile.provisional_code_hash = ""
        profile.provisional_code_expires_at = None
        profile.save(update_fields=["state", "activated_at", "provisional_code_hash", "provisional_code_expires_at"])
        _trail(profile, TrailAction.ACTIVATION, actor, old=State.OPEN, new=State.ACTIVE, reason="legal_representative")
    return profile


# --- L5, L6: closure, early deletion, re-opening ---------------------------------------------------------


def _may_close(profile: Profile, actor, reason: str) -> bool:
    if reason == ClosureReason.PATIENT:
        return _speaks_for(profile, actor) or _is_staff(actor)
    if reason == ClosureReason.ADMIN:
        return _is_staff(actor)
    if reason == ClosureReason.SUSPENSION:
        return actor is None or _is_staff(actor)
    return False  # DECEASED goes through do_record_death (L8)


def _close_locked(profile: Profile, *, actor, reason: str, now: datetime) -> Profile:
    old = profile.state
    profile.state = State.CLOSED
    profile.closed_at = now
    profile.archive_until = lifecycle.archive_end(now)  # L5: archived 10 years
    profile.closure_reason = reason
    profile.deletion_requested_at = None
    profile.save(update_fields=["state", "closed_at", "archive_until", "closure_reason", "deletion_requested_at"])
    entry = _trail(profile, TrailAction.CLOSURE, actor, old=old, new=State.CLOSED, reason=reason)
    queue_notice(profile, Notice.Kind.CLOSURE, trail_entry=entry)
    return profile


def do_close_profile(profile: Profile, *, actor, reason: str) -> Profile:
    """Close an open, active or suspended profile (L5 by the patient or staff, L7 when a suspension is not contested).

    Its data are archived for CARNET_ARCHIVE_YEARS years and practitioners lose access.
    """
    if reason not in ClosureReason.values:
        raise ValueError(f"Unknown closure reason {reason!r}")
    with transaction.atomic():
        profile = _lock(profile)
        _require(_may_close(profile, actor, reason))
        if profile.state not in _CLOSABLE:
            if profile.state == State.CLOSED:
                raise _refuse(_("Ce profil est déjà clôturé."), "already_closed")
            raise _wrong_state(profile)
        return _close_locked(profile, actor=actor, reason=reason, now=timezone.now())


def do_request_early_deletion(profile: Profile, *, actor) -> Profile:
    """L5: the holder (or staff on their behalf) asks that a closed profile be purged before the 10 years.

    The purge date becomes ``now + CARNET_EARLY_DELETION_DAYS`` (or stays earlier if the archive ends
    first) and the patient is told that date at once.
    """
    with transaction.atomic():
        profile = _lock(profile)
        deceased = profile.deceased_at is not None or profile.closure_reason == ClosureReason.DECEASED
        _require(_is_staff(actor) or (_speaks_for(profile, actor) and not deceased))  # L8: heirs go to staff
        if profile.state != State.CLOSED:
            raise _refuse(_("Seul un profil clôturé peut être supprimé : demandez d'abord sa clôture."), "not_closed")
        if profile.deletion_requested_at is not None:
            raise _refuse(
                _("La suppression de ce profil est déjà prévue le %(date)s."),
                "deletion_already_requested",
                date=_day(profile.archive_until),  # type: ignore[arg-type]  # set with deletion_requested_at (below)
            )
        now = timezone.now()
        due = lifecycle.early_deletion_due(now)
        profile.deletion_requested_at = now
        profile.archive_until = min(due, profile.archive_until) if profile.archive_until else due
        profile.save(update_fields=["deletion_requested_at", "archive_until"])
        entry = _trail(profile, TrailAction.DELETION_REQUEST, actor, detail=f"purge {profile.archive_until:%Y-%m-%d}")
        # L5 "patient informed": told now, while an address is still on file (the purge erases it).
        queue_notice(profile, Notice.Kind.DELETION_DONE, trail_entry=entry)
    return profile


def do_reopen_profile(profile: Profile, *, actor) -> Profile:
    """L6: re-open a closed, archived profile; its documents and trail were kept and are visible again.

    The holder may re-open a profile they closed themselves; closures decided by staff (admin decision,
    suspension) are re-opened by staff. A deceased person's profile is never re-opened (L8).
    """
    with transaction.atomic():
        profile = _lock(profile)
        if profile.closure_reason == ClosureReason.PATIENT:
            _require(_speaks_for(profile, actor) or _is_staff(actor))
        else:
            _require(_is_staff(actor))
        if profile.state != State.CLOSED:
            raise _wrong_state(profile)
        if profile.deceased_at is not None or profile.closure_reason == ClosureReason.DECEASED:
            raise _refuse(_("Le décès du titulaire a été enregistré : ce profil ne peut pas être rouvert."), "deceased")
        now = timezone.now()
        if profile.archive_until is not None and profile.archive_until <= now:
            raise _refuse(
                _("La durée de conservation de ce profil est écoulée : il ne peut plus être rouvert."),
                "archive_expired",
            )
        new = _resumed_state(profile)
        profile.state = new
        profile.closed_at = None
        profile.closure_reason = ""
        profile.archive_until = None
        profile.deletion_requested_at = None
        profile.suspended_at = None
        profile.save(
            update_fields=[
                "state",
                "closed_at",
                "closure_reason",
                "archive_until",
                "deletion_requested_at",
                "suspended_at",
            ]
        )
        entry = _trail(profile, TrailAction.REOPENING, actor, old=State.CLOSED, new=new)
        queue_notice(profile, Notice.Kind.REOPENING, trail_entry=entry)
    return profile


# --- L7: suspension -------------------------------------------------------------------------------------


def do_suspend_profile(profile: Profile, *, actor, reason: str) -> Profile:
    """L7: staff suspend an open or active profile for fraud or misuse; access stops, the patient is told.

    ``reason`` is a short motive kept in the trail only (64 characters); without objection the profile is
    closed after CARNET_SUSPENSION_CLOSE_DAYS days (``close_expired_suspensions``).
    """
    _require(_is_staff(actor))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Indiquez le motif de la suspension."), code="reason_required")
    with transaction.atomic():
        profile = _lock(profile)
        if profile.state not in _SUSPENDABLE:
            raise _wrong_state(profile)
        old = profile.state
        profile.state = State.SUSPENDED
        profile.suspended_at = timezone.now()
        profile.save(update_fields=["state", "suspended_at"])
        entry = _trail(profile, TrailAction.SUSPENSION, actor, old=old, new=State.SUSPENDED, reason=reason[:64])
        queue_notice(profile, Notice.Kind.SUSPENSION, trail_entry=entry)
    return profile


def do_lift_suspension(profile: Profile, *, actor) -> Profile:
    """L7: staff lift a suspension (the patient objected successfully); access resumes and the patient is told."""
    _require(_is_staff(actor))
    with transaction.atomic():
        profile = _lock(profile)
        if profile.state != State.SUSPENDED:
            raise _wrong_state(profile)
        new = _resumed_state(profile)
        profile.state = new
        profile.suspended_at = None
        profile.save(update_fields=["state", "suspended_at"])
        entry = _trail(profile, TrailAction.SUSPENSION_LIFTED, actor, old=State.SUSPENDED, new=new)
        queue_notice(profile, Notice.Kind.REOPENING, trail_entry=entry)
    return profile


def close_expired_suspensions(now: datetime | None = None) -> int:
    """L7 (scheduled): close the suspensions older than CARNET_SUSPENSION_CLOSE_DAYS days; returns the count."""
    now = now or timezone.now()
    cutoff = lifecycle.suspension_cutoff(now)
    due = Profile.objects.filter(state=State.SUSPENDED, suspended_at__lte=cutoff)
    closed = 0
    for ids in _due_id_chunks(due):
        for pk in ids:
            with transaction.atomic():
                profile = due.select_for_update(skip_locked=True).filter(pk=pk).first()
                if profile is None:  # lifted or closed meanwhile
                    continue
                _close_locked(profile, actor=None, reason=ClosureReason.SUSPENSION, now=timezone.now())
            closed += 1
    return closed


# --- L8: death ------------------------------------------------------------------------------------------


def do_record_death(profile: Profile, *, actor, date_of_death: date) -> Profile:
    """Record a death on staff's word (L8): the profile is closed for good, reason deceased.

    The account can no longer sign in and the profile can never be re-opened. No notice is sent: heirs deal with
    staff outside the portal.
    """
    _require(_is_staff(actor))
    with transaction.atomic():
        profile = _lock(profile)
        if profile.deceased_at is not None:
            raise _refuse(_("Le décès est déjà enregistré pour ce profil."), "already_deceased")
        if date_of_death > timezone.localdate() or date_of_death < profile.birth_date:
            raise _refuse(
                _("La date de décès doit être comprise entre la date de naissance et aujourd'hui."),
                "death_date_invalid",
            )
        now = timezone.now()
        old = profile.state
        profile.deceased_at = date_of_death
        profile.closure_reason = ClosureReason.DECEASED
        fields = ["deceased_at", "closure_reason"]
        if old != State.CLOSED:
            profile.state = State.CLOSED
            profile.closed_at = now
            profile.archive_until = lifecycle.archive_end(now)
            fields += ["state", "closed_at", "archive_until"]
        profile.save(update_fields=fields)
        if profile.user_id is not None:
            User.objects.filter(pk=profile.user_id).update(is_active=False)
        _trail(profile, TrailAction.DEATH, actor, old=old, new=State.CLOSED, reason=ClosureReason.DECEASED)
    return profile


# --- L10: legal representative --------------------------------------------------------------------------


def do_set_legal_representative(minor_profile: Profile, representative_profile: Profile | None, *, actor) -> Profile:
    """L10: name (or, with ``None``, remove) the adult whose account manages a minor's profile."""
    _require(actor is None or _is_staff(actor))
    with transaction.atomic():
        pks = sorted({minor_profile.pk} | ({representative_profile.pk} if representative_profile else set()))
        locked = {p.pk: p for p in Profile.objects.select_for_update().filter(pk__in=pks).order_by("pk")}
        profile = locked[minor_profile.pk]
        if profile.state == State.CLOSED:
            raise _wrong_state(profile)
        if representative_profile is None:
            if profile.legal_representative_id is None:
                return profile
            profile.legal_representative = None
            detail = "removed"
        else:
            representative = locked[representative_profile.pk]
            _check_representation(profile.birth_date, representative, profile.pk)
            if profile.legal_representative_id == representative.pk:
                return profile
            profile.legal_representative = representative
            detail = "set"
        profile.save(update_fields=["legal_representative"])
        _trail(profile, TrailAction.LEGAL_REPRESENTATIVE, actor, detail=detail)
    return profile


# --- L5, T4: purge --------------------------------------------------------------------------------------


def _delete_bodies(storage_keys: list[str]) -> None:
    for key in storage_keys:
        try:
            storage.delete_body(key)
        except Exception:  # an orphan body is unreadable without its wrapped key; keep purging the others
            logger.warning("Could not delete a purged document body (key %s).", key, exc_info=True)


def _purge_one(pk: int, now: datetime) -> bool:
    from access_control.trail import purge_allowed

    with transaction.atomic():
        profile = (
            Profile.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, state=State.CLOSED, archive_until__lte=now)
            .first()
        )
        if profile is None:  # re-opened or being changed meanwhile
            return False
        reason = "early_deletion" if profile.deletion_requested_at is not None else "archive_expired"
        storage_keys = list(profile.documents.values_list("storage_key", flat=True))
        # L10: minors this person represented lose their representative, traced in their own trail.
        for minor in Profile.objects.select_for_update().filter(legal_representative=profile).order_by("pk"):
            minor.legal_representative = None
            minor.save(update_fields=["legal_representative"])
            _trail(minor, TrailAction.LEGAL_REPRESENTATIVE, None, detail="removed", reason="representative_purged")
        user_id = profile.user_id
        with purge_allowed():  # T4: the trail is purged with its profile
            TrailEntry.objects.filter(profile_id=pk).delete()
        profile.delete()  # documents, notices, blocks, masks… cascade
        if user_id is not None:
            User.objects.filter(pk=user_id, kind=User.Kind.PATIENT).delete()
        # Proof that the purge ran, holding no personal data, in the profile-less chain.
        _trail(None, TrailAction.PURGE, None, detail=f"profile {pk}", reason=reason)
        transaction.on_commit(lambda: _delete_bodies(storage_keys))
    return True


def purge_due_profiles(now: datetime | None = None) -> int:
    """Delete the closed profiles whose archive period ended or whose early deletion is due (L5, T4; scheduled).

    Their documents (bodies removed after commit), notices and trail go with them. Returns how many were deleted.
    """
    now = now or timezone.now()
    due = Profile.objects.filter(state=State.CLOSED, archive_until__lte=now)
    purged = 0
    for ids in _due_id_chunks(due):
        purged += sum(_purge_one(pk, now) for pk in ids)
    return purged
