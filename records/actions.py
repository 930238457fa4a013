"""Lifecycle actions of a profile (rules L1-L10).

Each action takes its actor explicitly (``records.actors.Actor``: a staff or patient account; a practitioner is
never allowed here; ``None`` for the system: roster import, scheduler, or the anonymous holder of a provisional
code). Each owns a durable transaction (docs/architecture.md, "Writes are actions"), locks the profile
(``select_for_update``), checks everything before it writes, writes the trail entry (T1, ``TrailAction`` values
of ``records.lifecycle`` with ``detail="<from>-><to>"``) and queues the patient notice (N5) in that same
transaction. A refused action raises ``IllegalTransition`` (or its subclasses) and changes nothing (L9).

The scheduled rules (L3, L5, L7) are in ``records.lifecycle_jobs``; the steps both share in
``records.transitions``.

Early deletion (L5): the request brings the purge date forward to ``requested_at + CARNET_EARLY_DELETION_DAYS``
(stored in ``archive_until``); the patient is told at request time, by a ``DELETION_DONE`` notice, that the
data will be deleted on that date, and may re-open the profile until then.
"""

import uuid
from datetime import date, datetime

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.models import Notice
from notifications.outbox import queue_notice

from . import crypto, lifecycle
from .actors import Actor, is_staff, speaks_for
from .identifiers import validate_nir
from .lifecycle import IllegalTransition, InvalidProvisionalCode, TrailAction
from .models import Profile, User
from .nir_index import index_nir, profiles_with_nir
from .transitions import (
    check_representation,
    close_locked_profile,
    format_day,
    lock_profile,
    refuse,
    require_actor,
    trace_transition,
    wrong_state,
)

State = Profile.State
ClosureReason = Profile.ClosureReason

_CLOSABLE = (State.OPEN, State.ACTIVE, State.SUSPENDED)  # L5
_SUSPENDABLE = (State.OPEN, State.ACTIVE)  # L7


# --- Helpers --------------------------------------------------------------------------------------------


def _resumed_state(profile: Profile) -> str:
    """L6/L7: back to active when the profile had been activated, else open (never activated)."""
    return State.ACTIVE if profile.activated_at is not None else State.OPEN


def _seal_code(code: str) -> bytes:
    return crypto.seal(code.encode("ascii"))


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
    actor: Actor | None,
    durable: bool = True,
) -> tuple[Profile, str | None]:
    """L1: create a pending profile from the roster and send the pre-opening notice with a provisional code.

    Returns ``(profile, code)``. Idempotent on the NIR: a known NIR returns the existing profile, unchanged,
    and ``None`` for the code (use ``do_reissue_provisional_code`` to send a new one).
    """
    require_actor(actor is None or is_staff(actor))
    nir = validate_nir(nir)
    existing = profiles_with_nir(nir).first()
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
        with transaction.atomic(durable=durable):
            if legal_representative is not None:
                legal_representative = lock_profile(legal_representative)
                check_representation(birth_date, legal_representative, None)
                profile.legal_representative = legal_representative
            profile.save(force_insert=True)
            index_nir(profile)  # I1: unique across the country, on Citus too
            entry = trace_transition(profile, TrailAction.ENROL, actor, new=State.PENDING)
            if legal_representative is not None:
                trace_transition(profile, TrailAction.LEGAL_REPRESENTATIVE, actor, detail="set")
            queue_notice(profile, Notice.Kind.PRE_OPENING, trail_entry=entry, sealed_payload=_seal_code(code))
    except IntegrityError:
        existing = profiles_with_nir(nir).first()
        if existing is None:
            raise
        return existing, None  # a concurrent enrolment of the same NIR won the race
    return profile, code


def do_reissue_provisional_code(profile: Profile, *, actor: Actor | None, durable: bool = True) -> tuple[Profile, str]:
    """L1: replace the provisional code (the old one stops working) and send it in a new notice.

    The opposition window still runs from the first notice (L2).
    """
    require_actor(actor is None or is_staff(actor))
    with transaction.atomic(durable=durable):
        profile = lock_profile(profile)
        if profile.state not in (State.PENDING, State.OPEN):
            raise wrong_state(profile)
        code = lifecycle.generate_provisional_code()
        profile.provisional_code_hash = lifecycle.hash_provisional_code(code)
        profile.provisional_code_expires_at = lifecycle.provisional_code_expiry(timezone.now())
        profile.save(update_fields=["provisional_code_hash", "provisional_code_expires_at"])
        entry = trace_transition(profile, TrailAction.PROVISIONAL_CODE_REISSUED, actor)
        queue_notice(profile, Notice.Kind.PRE_OPENING, trail_entry=entry, sealed_payload=_seal_code(code))
    return profile, code


def check_provisional_code(profile: Profile, code: str | None) -> bool:
    """L1: the code is the profile's current one and has not expired (constant-time comparison)."""
    return lifecycle.check_provisional_code(profile, code)


def _check_code_expiry(profile: Profile, now: datetime) -> None:
    expires_at = profile.provisional_code_expires_at
    if expires_at is None or now >= expires_at:
        raise refuse(_("Ce code provisoire a expiré : demandez l'envoi d'un nouveau code."), "provisional_code_expired")


# --- L2, L3: opposition and opening ---------------------------------------------------------------------


def do_record_opposition(
    profile: Profile,
    *,
    actor: Actor | None,
    provisional_code: str | None = None,
    identity_checked: bool = False,
    durable: bool = True,
) -> Profile:
    """Record the person's opposition to the creation of their profile (L2); the profile will never open.

    The person acts with the provisional code, or staff act on their behalf after checking their identity, during
    the opposition window.
    """
    with transaction.atomic(durable=durable):
        profile = lock_profile(profile)
        now = timezone.now()
        if provisional_code is not None:
            require_actor(actor is None or isinstance(actor, User))
            # The code is checked before anything about the profile is said (no oracle on the NIR).
            if not lifecycle.provisional_code_matches(provisional_code, profile.provisional_code_hash):
                raise InvalidProvisionalCode()
            via = "provisional_code"
        else:
            require_actor(is_staff(actor) and identity_checked)
            via = "identity_checked"
        if profile.state == State.OPPOSED:
            raise refuse(_("Une opposition est déjà enregistrée pour ce profil."), "already_opposed")
        if profile.state != State.PENDING:
            raise refuse(
                _("Le délai d'opposition est terminé : le profil a été ouvert. Vous pouvez demander sa clôture."),
                "opposition_window_closed",
            )
        deadline = lifecycle.opposition_deadline(profile)
        if deadline is None or now >= deadline:
            raise refuse(
                _("Le délai d'opposition s'est terminé le %(date)s. Vous pouvez demander la clôture du profil."),
                "opposition_window_closed",
                date=format_day(deadline or now),
            )
        if via == "provisional_code":
            _check_code_expiry(profile, now)
        profile.state = State.OPPOSED
        profile.opposed_at = now
        profile.save(update_fields=["state", "opposed_at"])
        entry = trace_transition(
            profile, TrailAction.OPPOSITION, actor, old=State.PENDING, new=State.OPPOSED, reason=via
        )
        queue_notice(profile, Notice.Kind.OPPOSITION, trail_entry=entry)
    return profile


def _open_refusal(profile: Profile, now: datetime) -> IllegalTransition | None:
    if profile.state != State.PENDING:
        return wrong_state(profile)
    deadline = lifecycle.opposition_deadline(profile)
    if deadline is None or now < deadline:
        return refuse(
            _("Le délai d'opposition court jusqu'au %(date)s : le profil ne peut pas encore être ouvert."),
            "opposition_window_running",
            date=format_day(deadline) if deadline else "—",
        )
    return None


def do_open_profile(profile: Profile, *, actor: Actor | None = None, durable: bool = True) -> Profile:
    """L3: open a pending profile whose opposition window has passed (default-open access, A1)."""
    require_actor(actor is None or is_staff(actor))
    with transaction.atomic(durable=durable):
        profile = lock_profile(profile)
        now = timezone.now()
        refusal = _open_refusal(profile, now)
        if refusal is not None:
            raise refusal
        profile.state = State.OPEN
        profile.opened_at = now
        profile.save(update_fields=["state", "opened_at"])
        trace_transition(profile, TrailAction.OPENING, actor, old=State.PENDING, new=State.OPEN)
    return profile


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
        return refuse(_("Une opposition a été enregistrée : ce profil ne peut pas être activé."), "activation_opposed")
    if profile.state == State.ACTIVE or profile.user_id is not None:
        return refuse(_("Ce profil est déjà activé : connectez-vous."), "already_active")
    if profile.state not in (State.PENDING, State.OPEN):
        return wrong_state(profile)
    return None


def _give_profile_to(profile: Profile, user: User, *, email: str, now: datetime) -> None:
    """The locked profile becomes the new account's: active, the provisional code spent, traced (T1)."""
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
    trace_transition(profile, TrailAction.ACTIVATION, user, old=previous_state, new=State.ACTIVE)


def do_activate_profile_by_identity(
    profile: Profile, *, email: str, actor: Actor | None = None, durable: bool = True
) -> User:
    """L4 by a national identity: the holder proved who they are at FranceConnect, instead of the provisional code.

    The caller matched the provider's pivot identity to this one profile (``accounts.franceconnect``) and links
    the provider's subject in the same transaction. Same states as ``do_activate_profile``; the account gets no
    usable password (the patient signs in with FranceConnect, or sets one through the forgotten-password pages).
    """
    require_actor(actor is None)
    with transaction.atomic(durable=durable):
        profile = lock_profile(profile)
        now = timezone.now()
        refusal = _activation_refusal(profile, now)
        if refusal is not None:
            raise refusal
        user = User(username=f"patient-{uuid.uuid4().hex}", kind=User.Kind.PATIENT, email=email)
        user.set_unusable_password()
        user.save(force_insert=True)
        _give_profile_to(profile, user, email=email, now=now)
    return user


def do_activate_profile(
    profile: Profile,
    *,
    nir: str,
    provisional_code: str,
    birth_date: date,
    password: str,
    email: str,
    actor: Actor | None = None,
    durable: bool = True,
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
    require_actor(actor is None)
    with transaction.atomic(durable=durable):
        profile = lock_profile(profile)
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
        _give_profile_to(profile, user, email=email, now=now)
    return user


def do_activate_represented_profile(
    profile: Profile, *, provisional_code: str, birth_date: date, actor: Actor, durable: bool = True
) -> Profile:
    """Activate a minor's open profile from a legal representative's own account (L4, L10).

    No second login is created: the minor's profile is managed from the representative's account.
    """
    with transaction.atomic(durable=durable):
        profile = lock_profile(profile)
        representative = profile.legal_representative
        require_actor(
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
        trace_transition(
            profile, TrailAction.ACTIVATION, actor, old=State.OPEN, new=State.ACTIVE, reason="legal_representative"
        )
    return profile


# --- L5, L6: closure, early deletion, re-opening ---------------------------------------------------------


def _may_close(profile: Profile, actor: Actor | None, reason: str) -> bool:
    if reason == ClosureReason.PATIENT:
        return speaks_for(profile, actor) or is_staff(actor)
    if reason == ClosureReason.ADMIN:
        return is_staff(actor)
    if reason == ClosureReason.SUSPENSION:
        return actor is None or is_staff(actor)
    return False  # DECEASED goes through do_record_death (L8)


def do_close_profile(profile: Profile, *, actor: Actor | None, reason: str, durable: bool = True) -> Profile:
    """Close an open, active or suspended profile (L5 by the patient or staff, L7 when a suspension is not contested).

    Its data are archived for CARNET_ARCHIVE_YEARS years and practitioners lose access.
    """
    if reason not in ClosureReason.values:
        raise ValueError(f"Unknown closure reason {reason!r}")
    with transaction.atomic(durable=durable):
        profile = lock_profile(profile)
        require_actor(_may_close(profile, actor, reason))
        if profile.state not in _CLOSABLE:
            if profile.state == State.CLOSED:
                raise refuse(_("Ce profil est déjà clôturé."), "already_closed")
            raise wrong_state(profile)
        return close_locked_profile(profile, actor=actor, reason=reason, now=timezone.now())


def do_request_early_deletion(profile: Profile, *, actor: Actor) -> Profile:
    """L5: the holder (or staff on their behalf) asks that a closed profile be purged before the 10 years.

    The purge date becomes ``now + CARNET_EARLY_DELETION_DAYS`` (or stays earlier if the archive ends
    first) and the patient is told that date at once.
    """
    with transaction.atomic(durable=True):
        profile = lock_profile(profile)
        deceased = profile.deceased_at is not None or profile.closure_reason == ClosureReason.DECEASED
        require_actor(is_staff(actor) or (speaks_for(profile, actor) and not deceased))  # L8: heirs go to staff
        if profile.state != State.CLOSED:
            raise refuse(_("Seul un profil clôturé peut être supprimé : demandez d'abord sa clôture."), "not_closed")
        if profile.deletion_requested_at is not None:
            raise refuse(
                _("La suppression de ce profil est déjà prévue le %(date)s."),
                "deletion_already_requested",
                date=format_day(profile.archive_until),  # type: ignore[arg-type]  # set with deletion_requested_at (below)
            )
        now = timezone.now()
        due = lifecycle.early_deletion_due(now)
        profile.deletion_requested_at = now
        profile.archive_until = min(due, profile.archive_until) if profile.archive_until else due
        profile.save(update_fields=["deletion_requested_at", "archive_until"])
        entry = trace_transition(
            profile, TrailAction.DELETION_REQUEST, actor, detail=f"purge {profile.archive_until:%Y-%m-%d}"
        )
        # L5 "patient informed": told now, while an address is still on file (the purge erases it).
        queue_notice(profile, Notice.Kind.DELETION_DONE, trail_entry=entry)
    return profile


def do_reopen_profile(profile: Profile, *, actor: Actor) -> Profile:
    """L6: re-open a closed, archived profile; its documents and trail were kept and are visible again.

    The holder may re-open a profile they closed themselves; closures decided by staff (admin decision,
    suspension) are re-opened by staff. A deceased person's profile is never re-opened (L8).
    """
    with transaction.atomic(durable=True):
        profile = lock_profile(profile)
        if profile.closure_reason == ClosureReason.PATIENT:
            require_actor(speaks_for(profile, actor) or is_staff(actor))
        else:
            require_actor(is_staff(actor))
        if profile.state != State.CLOSED:
            raise wrong_state(profile)
        if profile.deceased_at is not None or profile.closure_reason == ClosureReason.DECEASED:
            raise refuse(_("Le décès du titulaire a été enregistré : ce profil ne peut pas être rouvert."), "deceased")
        now = timezone.now()
        if profile.archive_until is not None and profile.archive_until <= now:
            raise refuse(
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
        entry = trace_transition(profile, TrailAction.REOPENING, actor, old=State.CLOSED, new=new)
        queue_notice(profile, Notice.Kind.REOPENING, trail_entry=entry)
    return profile


# --- L7: suspension -------------------------------------------------------------------------------------


def do_suspend_profile(profile: Profile, *, actor: Actor, reason: str) -> Profile:
    """L7: staff suspend an open or active profile for fraud or misuse; access stops, the patient is told.

    ``reason`` is a short motive kept in the trail only (64 characters); without objection the profile is
    closed after CARNET_SUSPENSION_CLOSE_DAYS days (``close_expired_suspensions``).
    """
    require_actor(is_staff(actor))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Indiquez le motif de la suspension."), code="reason_required")
    with transaction.atomic(durable=True):
        profile = lock_profile(profile)
        if profile.state not in _SUSPENDABLE:
            raise wrong_state(profile)
        old = profile.state
        profile.state = State.SUSPENDED
        profile.suspended_at = timezone.now()
        profile.save(update_fields=["state", "suspended_at"])
        entry = trace_transition(
            profile, TrailAction.SUSPENSION, actor, old=old, new=State.SUSPENDED, reason=reason[:64]
        )
        queue_notice(profile, Notice.Kind.SUSPENSION, trail_entry=entry)
    return profile


def do_lift_suspension(profile: Profile, *, actor: Actor) -> Profile:
    """L7: staff lift a suspension (the patient objected successfully); access resumes and the patient is told."""
    require_actor(is_staff(actor))
    with transaction.atomic(durable=True):
        profile = lock_profile(profile)
        if profile.state != State.SUSPENDED:
            raise wrong_state(profile)
        new = _resumed_state(profile)
        profile.state = new
        profile.suspended_at = None
        profile.save(update_fields=["state", "suspended_at"])
        entry = trace_transition(profile, TrailAction.SUSPENSION_LIFTED, actor, old=State.SUSPENDED, new=new)
        queue_notice(profile, Notice.Kind.REOPENING, trail_entry=entry)
    return profile


# --- L8: death ------------------------------------------------------------------------------------------


def do_record_death(profile: Profile, *, actor: Actor, date_of_death: date) -> Profile:
    """Record a death on staff's word (L8): the profile is closed for good, reason deceased.

    The account can no longer sign in and the profile can never be re-opened. No notice is sent: heirs deal with
    staff outside the portal.
    """
    require_actor(is_staff(actor))
    with transaction.atomic(durable=True):
        profile = lock_profile(profile)
        if profile.deceased_at is not None:
            raise refuse(_("Le décès est déjà enregistré pour ce profil."), "already_deceased")
        if date_of_death > timezone.localdate() or date_of_death < profile.birth_date:
            raise refuse(
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
        trace_transition(profile, TrailAction.DEATH, actor, old=old, new=State.CLOSED, reason=ClosureReason.DECEASED)
    return profile


# --- L10: legal representative --------------------------------------------------------------------------


def do_set_legal_representative(
    minor_profile: Profile, representative_profile: Profile | None, *, actor: Actor | None
) -> Profile:
    """L10: name (or, with ``None``, remove) the adult whose account manages a minor's profile."""
    require_actor(actor is None or is_staff(actor))
    with transaction.atomic(durable=True):
        pks = sorted({minor_profile.pk} | ({representative_profile.pk} if representative_profile else set()))
        # One lock per row, in pk order: on Citus each is routed to its own shard.
        locked = {pk: Profile.objects.select_for_update().get(pk=pk) for pk in pks}
        profile = locked[minor_profile.pk]
        if profile.state == State.CLOSED:
            raise wrong_state(profile)
        if representative_profile is None:
            if profile.legal_representative_id is None:
                return profile
            profile.legal_representative = None
            detail = "removed"
        else:
            representative = locked[representative_profile.pk]
            check_representation(profile.birth_date, representative, profile.pk)
            if profile.legal_representative_id == representative.pk:
                return profile
            profile.legal_representative = representative
            detail = "set"
        profile.save(update_fields=["legal_representative"])
        trace_transition(profile, TrailAction.LEGAL_REPRESENTATIVE, actor, detail=detail)
    return profile
