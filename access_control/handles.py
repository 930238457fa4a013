"""Patient handles: what the API gives a practitioner in place of a profile id.

A handle carries the profile id, the access mode of the opening and the issue time, signed with an HMAC over
those and the actor's key; it expires after ``FOUND_SECONDS`` (found) or the door's ``OPENING_VALIDITY``
(opened). It is an index into the rules, not a permission: every use still goes through the door.
See docs/adr/0004-patient-handles.md.

FHIR needs a Patient id that stays the same between two searches (a client keys its cache and its references on
it), so FHIR names a patient by a *stable id* instead: ``<profile id>.<signature>``, the HMAC over the profile and
the actor's key, with no time in it. It is the same each time this actor finds this patient, useless to any other
actor, and carries no NIR. What bounds its use is the door's state, not the id: a practitioner may use it while
they found the patient by identity traits in the last ``FOUND_SECONDS`` (``mark_found``, a cache entry) or hold an
allowed opening of the record within ``OPENING_VALIDITY`` (the trail, ``consult``). Afterwards the id answers like an
unknown one, and the client searches the Patient again (A11), which gives the same id back.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import connections
from django.db.models import Exists, QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from access_control.api import (
    OPENING_VALIDITY,
    Decision,
    current_openings,
    has_current_opening,
    may_open,
    open_record,
)
from access_control.fast_sql import openable_profiles
from access_control.models import AccessMode
from plumbing.sql import CompiledQuery
from practitioners.models import Practitioner
from records.models import Profile, User

FOUND_SECONDS = 60 * 60
_SALT = "carnet.practitioners.handles"
_STABLE_SALT = "carnet.fhir.patient-ids"
_MODES = {"f": "", "n": AccessMode.NORMAL, "b": AccessMode.BRIS_DE_GLACE, "c": AccessMode.CENTRE_15}
_CODES = {mode: code for code, mode in _MODES.items()}


@dataclass(frozen=True)
class Handle:
    profile_id: int
    mode: str  # "" until the record is opened
    issued_at: int

    @property
    def is_open(self) -> bool:
        return bool(self.mode)


def _now() -> int:
    return int(timezone.now().timestamp())


def _signature(actor_key: str, body: str) -> str:
    return salted_hmac(_SALT, f"{actor_key}|{body}", algorithm="sha256").hexdigest()[:32]


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if not value:
            return out


def issue(actor_key: str, profile_id: int, mode: str = "") -> str:
    """A handle for this actor (``p<practitioner id>`` or ``u<user id>``) and profile, opened in ``mode``."""
    body = f"{profile_id}.{_CODES[mode]}{_base36(_now())}"
    return f"{body}.{_signature(actor_key, body)}"


def read(actor_key: str, value: str) -> Handle | None:
    """The handle if it is this actor's, well formed and not expired; None otherwise (alike)."""
    parts = (value or "").split(".")
    if len(parts) != 3 or len(value) > 64:
        return None
    profile, stamp, signature = parts
    body = f"{profile}.{stamp}"
    if not constant_time_compare(signature, _signature(actor_key, body)):
        return None
    if not profile.isdigit() or not stamp or stamp[0] not in _MODES:
        return None
    try:
        issued_at = int(stamp[1:], 36)
    except ValueError:
        return None
    mode = _MODES[stamp[0]]
    lifetime = int(OPENING_VALIDITY.total_seconds()) if mode else FOUND_SECONDS
    if not issued_at <= _now() < issued_at + lifetime:
        return None
    return Handle(profile_id=int(profile), mode=mode, issued_at=issued_at)


def practitioner_key(practitioner: Practitioner) -> str:
    return f"p{practitioner.pk}"


def user_key(user: User | AnonymousUser) -> str:
    return f"u{user.pk}"


# --- stable ids (FHIR Patient ids) -------------------------------------------------------------------------------


def _stable_signature(actor_key: str, profile_id: str) -> str:
    return salted_hmac(_STABLE_SALT, f"{actor_key}|{profile_id}", algorithm="sha256").hexdigest()[:32]


def stable_id(actor_key: str, profile_id: int) -> str:
    """This actor's permanent id for this profile: the same at every look-up, meaningless to anyone else."""
    return f"{profile_id}.{_stable_signature(actor_key, str(profile_id))}"


def read_stable_id(actor_key: str, value: str) -> int | None:
    """The profile id behind this actor's stable id; None for another actor's, a forged or a malformed one."""
    profile, _sep, signature = (value or "").partition(".")
    if not profile.isdigit() or len(value) > 64 or "." in signature:
        return None
    if not constant_time_compare(signature, _stable_signature(actor_key, profile)):
        return None
    return int(profile)


def _found_key(actor_key: str, profile_id: int) -> str:
    return f"carnet:fhir-found:{_stable_signature(actor_key, str(profile_id))}"  # no profile id in the cache


def mark_found(actor_key: str, profile_id: int) -> None:
    """A11 was met just now: the actor found this profile by its identity traits (usable ``FOUND_SECONDS``)."""
    cache.set(_found_key(actor_key, profile_id), _now(), FOUND_SECONDS)


def recently_found(actor_key: str, profile_id: int) -> bool:
    return cache.get(_found_key(actor_key, profile_id)) is not None


def consult(
    practitioner: Practitioner,
    profile: Profile,
    *,
    client_address: str | None = None,
    standing: bool | None = None,
) -> Decision | None:
    """Open the record in normal mode (A1, traced and notified, T1 N1), unless a current opening stands.

    One consultation is one trail entry however it is paged or listed again: within ``OPENING_VALIDITY`` of an
    allowed opening, and while the record-level decision still holds (``may_open``: a block or a closure takes
    effect at once), nothing is written and ``None`` is returned. Otherwise ``open_record``'s decision.
    ``standing``: both facts, when the caller has just read them (``consultation_profile``); read here otherwise.
    """
    if standing is None:
        standing = has_current_opening(practitioner.pk, profile.pk) and may_open(practitioner, profile)
    if standing:
        return None
    return open_record(
        practitioner, profile, mode=AccessMode.NORMAL, attests_care_team=True, client_address=client_address
    )


# Ids and an instant no real row has: ``consultation_profile``'s query is compiled once per connection with them.
_PRACTITIONER_SLOT = -(2**62) + 13
_PROFILE_SLOT = -(2**62) + 17
_SINCE_SLOT = datetime(1, 2, 3, 4, 5, 6, tzinfo=UTC)


def consultation_profiles(practitioner_id: int, profile_id: int, since: datetime) -> QuerySet[Profile]:
    """The ORM reference of ``consultation_profile``: the profile with the two facts ``consult`` needs.

    ``_opened``: ``has_current_opening`` (an allowed normal-mode opening since ``since``); ``_openable``:
    ``may_open`` in normal mode.
    """
    return Profile.objects.filter(pk=profile_id).annotate(
        _opened=Exists(current_openings(practitioner_id, profile_id, AccessMode.NORMAL, since=since)),
        _openable=Exists(openable_profiles(practitioner_id, AccessMode.NORMAL, profile_id)),
    )


_CONSULTATION = CompiledQuery(consultation_profiles, _PRACTITIONER_SLOT, _PROFILE_SLOT, _SINCE_SLOT)


def consultation_profile(practitioner_id: int, profile_id: int) -> Profile | None:
    """The profile with the two facts ``consult`` needs (``_opened``, ``_openable``), or None: one query.

    A FHIR listing runs it on every page (bench/README.md, api.py): on PostgreSQL its SQL is compiled once per
    connection (``plumbing.sql.CompiledQuery``); elsewhere the ORM builds it each time.
    """
    since = timezone.now() - OPENING_VALIDITY
    using = Profile.objects.db
    if connections[using].vendor == "postgresql":  # other vendors adapt the instant to text: no slot to find
        found = _CONSULTATION.instances(practitioner_id, profile_id, since, using=using)
    else:
        found = list(consultation_profiles(practitioner_id, profile_id, since))
    return found[0] if found else None
