"""Patient handles: what the API gives a practitioner in place of a profile id.

A handle carries the profile id, the access mode of the opening and the issue time, signed with an HMAC over
those and the actor's key; it expires after ``FOUND_SECONDS`` (found) or the door's ``OPENING_VALIDITY``
(opened). It is an index into the rules, not a permission: every use still goes through the door.
See docs/adr/0004-patient-handles.md.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from access_control.api import OPENING_VALIDITY
from access_control.models import AccessMode
from practitioners.models import Practitioner
from records.models import User

FOUND_SECONDS = 60 * 60
_SALT = "carnet.practitioners.handles"
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
