"""What every page of the patient portal shares.

The current profile (L10), the step-up re-check, the throttle of the public pages, one-time form tokens, and
the patient's door to one document.

- **Current profile** (L10): a legal representative acts on their own profile or on a child's. The choice is
  kept in the session and checked against ``access_control.api.profiles_managed_by`` on every request;
  ``portal_view`` puts ``request.current_profile`` and ``request.acting_as_representative`` on the request.
- **Step-up**: closure, export, e-mail change and unblocking ask for the password or a second-factor code
  again; the re-check holds ``STEP_UP_SECONDS`` (settings ``CARNET_STEP_UP_SECONDS``, 5 minutes by default).
  So do the changes the patient API guards the same way (``patients.api``'s step-up list): the emergency
  opt-out, declaring the treating doctor, granting the treating doctor's rights or an occupational
  authorisation, changing the notice channel (``step_up_before_post``).
- **Public throttle**: the opposition and activation pages count failures per client address and per NIR
  (HMAC keys in the cache, ``plumbing.throttling``; the address's limit is sign-in's address limit) and refuse
  further attempts without looking anything up, with a 429 and ``Retry-After``.
- **One-time tokens**: a form whose replay would act twice (an upload) carries a token that is spent on use.
"""

import secrets
import smtplib
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from access_control.api import documents_visible_to_patient, pending_holds_for_patient, profiles_managed_by
from accounts.auth import client_address, patient_required
from plumbing.throttling import FailureGate, hashed_key
from records.account_actions import do_trace_denied_document

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

CURRENT_PROFILE_SESSION_KEY = "carnet_current_profile"
STEP_UP_SESSION_KEY = "carnet_step_up_until"
FORM_TOKENS_SESSION_KEY = "carnet_form_tokens"
PREVIEW_GRANTS_SESSION_KEY = "carnet_preview_grants"
PREVIEW_GRANT_SECONDS = 10 * 60
DEFAULT_STEP_UP_SECONDS = 5 * 60
MAX_FORM_TOKENS = 20


# --- Current profile (L10) ----------------------------------------------------------------------------


def managed_profiles(request) -> list:
    """The user's own profile first, then the minors they represent (one query, cached on the request)."""
    if not hasattr(request, "_carnet_managed_profiles"):
        request._carnet_managed_profiles = list(
            profiles_managed_by(request.user).select_related("treating_doctor__profession")
        )
    return request._carnet_managed_profiles


def resolve_current_profile(request):
    """The profile chosen in the session if the user still manages it, else their own (L10)."""
    own = request.profile
    wanted = request.session.get(CURRENT_PROFILE_SESSION_KEY)
    if wanted and wanted != own.pk:
        for profile in managed_profiles(request):
            if profile.pk == wanted:
                return profile
        request.session.pop(CURRENT_PROFILE_SESSION_KEY, None)  # no longer represented: back to one's own
    for profile in managed_profiles(request):
        if profile.pk == own.pk:
            return profile
    return own


def portal_view(view):
    """``patient_required`` plus the current profile (``request.current_profile``), checked on each request."""

    @patient_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        request.current_profile = resolve_current_profile(request)
        request.managed_profiles = managed_profiles(request)
        request.acting_as_representative = request.current_profile.pk != request.profile.pk
        return view(request, *args, **kwargs)

    return wrapper


def own_profile_only(view):
    """Pages about the account itself (e-mail, second factor): always on the user's own profile."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.acting_as_representative:
            request.current_profile = request.profile
            request.acting_as_representative = False
        return view(request, *args, **kwargs)

    return wrapper


# --- Step-up --------------------------------------------------------------------------------------------


def step_up_seconds() -> int:
    return int(getattr(settings, "CARNET_STEP_UP_SECONDS", DEFAULT_STEP_UP_SECONDS))


def step_up_is_fresh(request) -> bool:
    until = request.session.get(STEP_UP_SESSION_KEY, 0)
    return until > timezone.now().timestamp()


def mark_step_up(request) -> None:
    request.session[STEP_UP_SESSION_KEY] = int(timezone.now().timestamp()) + step_up_seconds()


def step_up_url(next_url: str) -> str:
    return f"{reverse('patients:step_up')}?{urlencode({'next': next_url})}"


def step_up_required(view):
    """Send the patient to the re-check first; a POST that arrives without it goes back to its page's GET."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not step_up_is_fresh(request):
            return redirect(step_up_url(request.get_full_path()))
        return view(request, *args, **kwargs)

    return wrapper


def step_up_before_post(*keep: str, when: Callable[[HttpRequest], bool] | None = None):
    """A sensitive POST, done at once when the step-up is fresh; otherwise re-check first, input kept.

    A browser cannot be sent back to a POST, so a POST without a fresh step-up goes to the re-check with, as its
    ``next``, this URL by GET carrying the form fields ``keep`` in its query string; the view answers that GET
    with a confirmation page whose form posts them again (as unblocking does). The GET itself asks for the
    re-check too. ``when`` says whether this POST is sensitive at all (withdrawing a right only narrows access:
    no re-check).
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if step_up_is_fresh(request):
                return view(request, *args, **kwargs)
            if request.method != "POST":
                return redirect(step_up_url(request.get_full_path()))
            if when is not None and not when(request):
                return view(request, *args, **kwargs)
            kept = {name: request.POST[name] for name in keep if name in request.POST}
            return redirect(step_up_url(f"{request.path}?{urlencode(kept)}" if kept else request.path))

        return wrapper

    return decorator


# --- Public throttle (opposition, activation) -----------------------------------------------------------


class PublicGate(FailureGate):
    """Failure counters of a public identity check: one per client address, one per NIR typed.

    The NIR counter closes at ``CARNET_LOGIN_ATTEMPTS`` failures, as an account does at sign-in; the address
    counter only at ``CARNET_LOGIN_ADDRESS_ATTEMPTS``, as sign-in's does: a hospital or a family behind one NAT
    must not lock each other out after a few typos, while one address trying many NIRs is still stopped.
    """

    def __init__(self, request, *, page: str, nir: str | None):
        self.keys = []
        self.address_key = None
        address = client_address(request)
        if address:
            self.address_key = hashed_key("carnet:public-failures", f"{page}:address", address)
            self.keys.append(self.address_key)
        if nir:
            self.keys.append(hashed_key("carnet:public-failures", f"{page}:nir", nir))

    def limit(self, key: str) -> int:
        if key == self.address_key:
            return settings.CARNET_LOGIN_ADDRESS_ATTEMPTS
        return settings.CARNET_LOGIN_ATTEMPTS


# --- One-time form tokens --------------------------------------------------------------------------------


def issue_form_token(request) -> str:
    token = secrets.token_urlsafe(16)
    tokens = request.session.get(FORM_TOKENS_SESSION_KEY, [])
    request.session[FORM_TOKENS_SESSION_KEY] = [*tokens, token][-MAX_FORM_TOKENS:]
    return token


def spend_form_token(request, token: str | None) -> bool:
    """True the first time a token issued to this session comes back; False for a replay or a forgery."""
    tokens = request.session.get(FORM_TOKENS_SESSION_KEY, [])
    if not token or token not in tokens:
        return False
    tokens.remove(token)
    request.session[FORM_TOKENS_SESSION_KEY] = tokens
    return True


# --- Documents seen by the patient ----------------------------------------------------------------------


def patient_documents(request):
    """The current profile's documents as the user may see them (the access-control door, A8-A10)."""
    return documents_visible_to_patient(request.user, request.current_profile)


def patient_document_or_404(request, document_id):
    """One document of the current profile, or 404 for any other id (traced as a denied attempt, T1)."""
    document = patient_documents(request).filter(pk=document_id).first()
    if document is None:
        do_trace_denied_document(
            request.current_profile, document_id, actor=request.user, client_address=client_address(request)
        )
        raise Http404("No such document.")
    return document


def grant_preview(request, document_id: int) -> None:
    """The document's page was opened (traced): its page images may be fetched for a while without a new entry."""
    now = int(timezone.now().timestamp())
    grants = {key: until for key, until in request.session.get(PREVIEW_GRANTS_SESSION_KEY, {}).items() if until > now}
    grants[f"{request.current_profile.pk}:{document_id}"] = now + PREVIEW_GRANT_SECONDS
    request.session[PREVIEW_GRANTS_SESSION_KEY] = grants


def has_preview_grant(request, document_id: int) -> bool:
    grants = request.session.get(PREVIEW_GRANTS_SESSION_KEY, {})
    return grants.get(f"{request.current_profile.pk}:{document_id}", 0) > int(timezone.now().timestamp())


def pending_holds_count(request) -> int:
    """A8: documents held for an announcement consultation that the patient has been told about.

    The patient learns of a hold only once the 14-day reminder was sent (A8); before that, and under the
    minor's secret for a representative (A9), nothing is said. Only a count: the document stays hidden.
    """
    return pending_holds_for_patient(request.user, request.current_profile).count()


# --- Verification codes by e-mail --------------------------------------------------------------------------


def send_code_and_tell(request, send: Callable[[], bool], sent: "StrOrPromise") -> None:
    """Send a verification code with ``send`` and tell the user what happened.

    ``send`` returns True when sent, False when one went out less than a minute ago; the mail server refusing it
    is reported too (they can ask again).
    """
    try:
        was_sent = send()
    except (smtplib.SMTPException, OSError):
        messages.error(request, _("Le code n'a pas pu être envoyé. Réessayez dans quelques instants."))
        return
    messages.info(
        request, sent if was_sent else _("Un code vous a été envoyé il y a moins d'une minute : utilisez-le.")
    )
