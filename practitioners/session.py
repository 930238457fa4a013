"""The practitioner portal's page state, kept in the session so that no NIR ever appears in a URL.

Patient tokens: a successful identity look-up (A11) gives the practitioner a random token, valid in their
session only, that stands for the profile in every following URL (``/pro/patient/<token>/…``). The token
holds nothing but the profile id, the time of the look-up and, once the record was opened, the access mode
and the time of that opening. A found-but-not-opened token lives ``FOUND_SECONDS``; an opened one as long
as the door lets documents be opened after an opening (``OPENING_VALIDITY``, A1). Signing out, or another
session, loses them all: the look-up must be made again.

Deposit form tokens (replay protection): each deposit form carries a one-time token issued to this session.
The request that deposits consumes it first, with an atomic ``cache.add`` (the first request wins even if two
copies of the form are posted at the same instant, which the session alone cannot guarantee); a replayed form
is answered with the outcome of the first submission and deposits nothing.

Viewing grants: the document page, which opens the document through the door (traced), lets its inline body
(the ``<iframe>`` or ``<img>`` of the same page) be fetched for ``VIEW_GRANT_SECONDS`` without a second trail
entry for the same viewing.
"""

import secrets
from dataclasses import dataclass

from django.core.cache import cache
from django.utils import timezone

from access_control.api import OPENING_VALIDITY

PATIENTS_KEY = "carnet_pro_patients"
FORMS_KEY = "carnet_pro_forms"
USED_FORMS_KEY = "carnet_pro_used_forms"
VIEWS_KEY = "carnet_pro_viewing"

FOUND_SECONDS = 60 * 60  # a found patient stays reachable for one hour before the record is opened
VIEW_GRANT_SECONDS = 10 * 60
FORM_SECONDS = 6 * 60 * 60
MAX_PATIENTS = 30
MAX_FORMS = 30


def _now() -> int:
    return int(timezone.now().timestamp())


def new_token() -> str:
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class PatientRef:
    """A patient the practitioner found in this session (by identity traits, or from their patient list)."""

    token: str
    profile_id: int
    found_at: int
    mode: str = ""  # access mode of the current opening, "" while the record is not opened
    opened_at: int = 0

    @property
    def is_open(self) -> bool:
        return bool(self.mode) and self.opened_at + int(OPENING_VALIDITY.total_seconds()) > _now()


def _patients(request) -> dict:
    return request.session.get(PATIENTS_KEY, {})


def _alive(data: dict, now: int) -> bool:
    if data.get("mode"):
        return data["opened_at"] + int(OPENING_VALIDITY.total_seconds()) > now
    return data["found_at"] + FOUND_SECONDS > now


def remember_patient(request, profile_id: int) -> str:
    """A new token for this profile in this session (an existing live token for it is reused)."""
    now = _now()
    patients = {token: data for token, data in _patients(request).items() if _alive(data, now)}
    for token, data in patients.items():
        if data["profile"] == profile_id:
            data["found_at"] = now
            request.session[PATIENTS_KEY] = patients
            return token
    token = new_token()
    patients[token] = {"profile": profile_id, "found_at": now, "mode": "", "opened_at": 0}
    if len(patients) > MAX_PATIENTS:
        for oldest in sorted(patients, key=lambda t: max(patients[t]["found_at"], patients[t]["opened_at"]))[
            : len(patients) - MAX_PATIENTS
        ]:
            del patients[oldest]
    request.session[PATIENTS_KEY] = patients
    return token


def patient_ref(request, token: str) -> PatientRef | None:
    data = _patients(request).get(token)
    if data is None or not _alive(data, _now()):
        return None
    return PatientRef(
        token=token,
        profile_id=data["profile"],
        found_at=data["found_at"],
        mode=data.get("mode", ""),
        opened_at=data.get("opened_at", 0),
    )


def mark_opened(request, token: str, mode: str) -> None:
    patients = _patients(request)
    if token in patients:
        patients[token].update(mode=mode, opened_at=_now())
        request.session[PATIENTS_KEY] = patients


# --- Viewing grants ---------------------------------------------------------------------------------------


def grant_view(request, token: str, document_id: int) -> None:
    now = _now()
    grants = {key: until for key, until in request.session.get(VIEWS_KEY, {}).items() if until > now}
    grants[f"{token}:{document_id}"] = now + VIEW_GRANT_SECONDS
    request.session[VIEWS_KEY] = grants


def has_view_grant(request, token: str, document_id: int) -> bool:
    return request.session.get(VIEWS_KEY, {}).get(f"{token}:{document_id}", 0) > _now()


# --- One-time deposit form tokens -----------------------------------------------------------------------


def issue_form_token(request) -> str:
    now = _now()
    forms = {token: at for token, at in request.session.get(FORMS_KEY, {}).items() if at + FORM_SECONDS > now}
    token = new_token()
    forms[token] = now
    if len(forms) > MAX_FORMS:
        for oldest in sorted(forms, key=forms.__getitem__)[: len(forms) - MAX_FORMS]:
            del forms[oldest]
    request.session[FORMS_KEY] = forms
    return token


class FormToken:
    FRESH = "fresh"
    REPLAYED = "replayed"
    UNKNOWN = "unknown"


def consume_form_token(request, token: str) -> str:
    """Spend a form token and say whether the submission is ``FRESH``, ``REPLAYED`` or ``UNKNOWN``.

    ``FRESH`` for the first submission of a form issued to this session (the token is spent now), ``REPLAYED`` for
    a later one, ``UNKNOWN`` for a token never issued here or expired.
    """
    forms = request.session.get(FORMS_KEY, {})
    issued_at = forms.get(token) if token else None
    if issued_at is None:
        return FormToken.REPLAYED if token and token in request.session.get(USED_FORMS_KEY, {}) else FormToken.UNKNOWN
    if issued_at + FORM_SECONDS <= _now():
        return FormToken.UNKNOWN
    # The atomic claim: of two simultaneous posts of the same form, exactly one gets True.
    first = cache.add(f"carnet:pro-form:{token}", 1, timeout=FORM_SECONDS)
    forms.pop(token, None)
    request.session[FORMS_KEY] = forms
    return FormToken.FRESH if first else FormToken.REPLAYED


def remember_form_outcome(request, token: str, url: str) -> None:
    """Where a replay of this form goes: the page the first submission led to."""
    used = dict(request.session.get(USED_FORMS_KEY, {}))
    used[token] = url
    if len(used) > MAX_FORMS:
        for stale in list(used)[: len(used) - MAX_FORMS]:
            del used[stale]
    request.session[USED_FORMS_KEY] = used


def form_outcome(request, token: str) -> str | None:
    return request.session.get(USED_FORMS_KEY, {}).get(token)
