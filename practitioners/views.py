"""Practitioner portal pages (the sign-in pages, password recovery included, are in ``views_signin``).

The portal goes through the access-control door only (``access_control.api``): find a patient by identity
traits (A11), open the record with the care-team attestation (A1) or in emergency (A7), list the visible
documents (A2, A4, A12), open one (traced), deposit (A8-A10), the treating doctor's patients and trails (A6,
T3) and the practitioner's own activity (T3). Which patient a page is about travels as a session token
(``practitioners.session``), never as a NIR. See docs/practitioner-portal.md.
"""

from typing import TYPE_CHECKING

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access_control.actions import IllegalAction, do_deposit_document, do_release_hold
from access_control.api import (
    LookupThrottled,
    find_profile,
    health_summary_for_practitioner,
    may_see_trail,
    open_document,
    open_record,
    profiles_treated_by,
    recent_patient,
    recent_patients,
    visible_documents,
)
from access_control.models import AccessMode, TrailEntry
from access_control.queries import own_actions, trail_for_treating_doctor
from access_control.rules import GENERIC_REFUSAL, Action
from accounts.auth import (
    client_address,
    practitioner_required,
)
from accounts.second_factors import (
    remaining_backup_codes,
)
from records import content_types
from records.health_summary import SummaryAction
from records.lifecycle import TrailAction, is_minor
from records.models import Document, Profile
from records.preview import can_preview, page_response, preview_of
from records.storage import RejectedFile, body_response, read_body

from .deposits import do_deposit_by_identity, document_options
from .forms import (
    AttestForm,
    DepositForm,
    EmergencyForm,
    FindPatientForm,
    IdentityDepositForm,
    RecordFilterForm,
)
from .session import (
    FormToken,
    PatientRef,
    consume_form_token,
    form_outcome,
    grant_view,
    has_view_grant,
    issue_form_token,
    mark_opened,
    patient_ref,
    remember_form_outcome,
    remember_patient,
)

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


@require_GET
@practitioner_required
def home(request):
    context = {
        "practitioner": request.practitioner,
        "backup_codes_left": remaining_backup_codes(request.user),
        "has_patients": profiles_treated_by(request.practitioner).exists(),
        "recent_patients": recent_patients(request.practitioner),
        "nav": "home",
    }
    return render(request, "practitioners/home.html", context)


@require_POST
@practitioner_required
def recent_open(request, profile_id):
    """From the home page's recent patients to the patient's page: opening asks for the attestation again (A1).

    A profile that is not among the practitioner's recent, still openable patients is a 404, like an unknown one.
    """
    profile = recent_patient(request.practitioner, profile_id)
    if profile is None:
        raise Http404
    return redirect("practitioners:patient", token=remember_patient(request, profile.pk))


# --- The portal: find, open, read ------------------------------------------------------------------------

PAGE_SIZE = 20
MAX_ID = 2**63 - 1
LIST_PAGE_SIZE = 50
TEXT_PREVIEW_BYTES = 256 * 1024
TEXT_TYPES = {content_types.TEXT, content_types.CDA_XML}
EXTENSIONS = {
    content_types.PDF: "pdf",
    content_types.JPEG: "jpg",
    content_types.PNG: "png",
    content_types.TIFF: "tif",
    content_types.RTF: "rtf",
    content_types.TEXT: "txt",
    content_types.CDA_XML: "xml",
}
ACTION_LABELS = {**dict(Action.choices), **dict(TrailAction.choices), **dict(SummaryAction.choices)}
MODE_LABELS = dict(AccessMode.choices)
OUTCOME_LABELS = dict(TrailEntry.Outcome.choices)
RECEIPT_MESSAGE = _(
    "Transmission enregistrée. Carnet ne confirme un dépôt que dans les dossiers que vous pouvez consulter : "
    "si un dossier ouvert correspond exactement à ces traits d'identité, le document y a été versé. Sinon, "
    "vérifiez les traits d'identité saisis."
)
REPLAYED_MESSAGE = _("Ce formulaire a déjà été envoyé : aucun nouveau document n'a été déposé.")
EXPIRED_FORM_MESSAGE = _(
    "Ce formulaire a expiré. Vérifiez les informations, choisissez à nouveau le fichier et renvoyez-le."
)


def _patient(request, token: str) -> tuple[PatientRef, Profile]:
    """The patient behind a session token, or 404 (an unknown or expired token says nothing more)."""
    ref = patient_ref(request, token)
    if ref is None:
        raise Http404
    profile = Profile.objects.select_related("treating_doctor").filter(pk=ref.profile_id).first()
    if profile is None:
        raise Http404
    return ref, profile


def _patient_context(ref: PatientRef, profile: Profile, **extra) -> dict:
    emergency = bool(ref.mode) and ref.mode != AccessMode.NORMAL and ref.is_open
    return {
        "ref": ref,
        "profile": profile,
        "emergency": emergency,
        "mode_label": MODE_LABELS.get(ref.mode, ""),
        **extra,
    }


def _opened_patient(request, token: str) -> tuple[PatientRef, Profile] | None:
    ref, profile = _patient(request, token)
    return (ref, profile) if ref.is_open else None


def _mode(ref: PatientRef) -> str:
    return ref.mode or AccessMode.NORMAL


@never_cache
@require_http_methods(["GET", "POST"])
@practitioner_required
def find_patient(request):
    """A11: NIR and birth date (and birth name); a profile that may not be opened looks like an unknown one."""
    form = FindPatientForm(data=request.POST if request.method == "POST" else None)
    refusal: StrOrPromise | None = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            profile = find_profile(
                request.practitioner,
                nir=data["nir"],
                birth_date=data["birth_date"],
                birth_name=data["birth_name"] or None,
                client_address=client_address(request),
            )
        except LookupThrottled as exc:
            refusal = exc.messages[0]
        else:
            if profile is not None:
                return redirect("practitioners:patient", token=remember_patient(request, profile.pk))
            refusal = GENERIC_REFUSAL
    return render(request, "practitioners/find.html", {"form": form, "refusal": refusal, "nav": "find"})


@never_cache
@require_http_methods(["GET", "POST"])
@practitioner_required
def patient(request, token):
    """The found patient: open the record with the care-team attestation (A1), or go to emergency access."""
    ref, profile = _patient(request, token)
    form = AttestForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        decision = open_record(
            request.practitioner,
            profile,
            mode=AccessMode.NORMAL,
            attests_care_team=form.cleaned_data["attests_care_team"],
            client_address=client_address(request),
        )
        if decision.allowed:
            mark_opened(request, token, AccessMode.NORMAL)
            return redirect("practitioners:record", token=token)
        messages.error(request, decision.message)
        return redirect("practitioners:patient", token=token)
    context = _patient_context(ref, profile, form=form, practitioner=request.practitioner)
    return render(request, "practitioners/patient.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
@practitioner_required
def emergency(request, token):
    """A7: choose the mode, justify (bris de glace), read the consequences, confirm; refused if opted out."""
    ref, profile = _patient(request, token)
    practitioner = request.practitioner
    form = EmergencyForm(
        data=request.POST if request.method == "POST" else None, samu_regulator=practitioner.is_samu_regulator
    )
    if form.is_valid():
        mode, justification = form.cleaned_data["mode"], form.cleaned_data["justification"].strip()
        if request.POST.get("confirm") != "yes":
            context = _patient_context(ref, profile, form=form, mode=mode, justification=justification)
            return render(request, "practitioners/emergency_confirm.html", context)
        decision = open_record(
            practitioner, profile, mode=mode, justification=justification, client_address=client_address(request)
        )
        if not decision.allowed:
            messages.error(request, decision.message)
            return redirect("practitioners:patient", token=token)
        mark_opened(request, token, mode)
        messages.warning(
            request,
            _(
                "Accès en urgence enregistré : le patient et son médecin traitant en sont informés, "
                "et l'accès sera revu par l'Assurance Maladie."
            ),
        )
        return redirect("practitioners:record", token=token)
    return render(request, "practitioners/emergency.html", _patient_context(ref, profile, form=form))


def _author_label(kind: str, title: str, first_name: str, last_name: str) -> str:
    if kind == Document.AuthorKind.PATIENT:
        return str(_("Le patient"))
    return " ".join(part for part in (title, first_name, last_name) if part)


@require_GET
@practitioner_required
def record(request, token):
    """The record: the health summary and the visible documents only (A2, A4, A12), filtered and paginated.

    The page costs a constant number of queries. Masked documents leave no trace (A4) unless this practitioner may
    see them (author, A6).
    """
    opened = _opened_patient(request, token)
    if opened is None:
        return redirect("practitioners:patient", token=token)
    ref, profile = opened
    practitioner = request.practitioner
    visible = visible_documents(practitioner, profile, mode=_mode(ref))
    # The filters' choices, from the visible documents only (A4: a masked type or author leaves no option): one
    # query for the distinct (type, author) pairs.
    facets = (
        visible.order_by()
        .values_list(
            "document_type__code",
            "document_type__label_fr",
            "author_kind",
            "author_practitioner_id",
            "author_practitioner__title",
            "author_practitioner__first_name",
            "author_practitioner__last_name",
        )
        .distinct()
    )
    types, authors = set(), set()
    for code, label, kind, author_id, title, first, last in facets:
        types.add((code, label))
        key = "patient" if kind == Document.AuthorKind.PATIENT else str(author_id)
        authors.add((key, _author_label(kind, title, first, last), "" if key == "patient" else last))
    form = RecordFilterForm(
        data=request.GET or None,
        types=sorted(types, key=lambda choice: choice[1]),
        authors=[(key, label) for key, label, _last in sorted(authors, key=lambda a: (a[0] != "patient", a[2], a[1]))],
    )
    page = Paginator(form.apply(visible), PAGE_SIZE).get_page(request.GET.get("page"))
    # The health summary, under the rules of a patient-deposited synthesis; shown first in emergency (A7).
    summary = health_summary_for_practitioner(
        practitioner, profile, mode=_mode(ref), client_address=client_address(request)
    )
    context = _patient_context(
        ref,
        profile,
        page=page,
        form=form,
        practitioner=practitioner,
        sees_trail=may_see_trail(practitioner, profile),
        summary=summary,
    )
    return render(request, "practitioners/record.html", context)


def _filename(document: Document) -> str:
    name = (document.original_name or "").strip()
    return name or f"document-{document.pk}.{EXTENSIONS.get(document.content_type, 'bin')}"


def _body_response(document: Document, *, as_attachment: bool) -> StreamingHttpResponse:
    return body_response(document, as_attachment=as_attachment, filename=_filename(document))


def _open_document_or_404(request, ref: PatientRef, document_id: int) -> Document:
    """One document through the door (traced, T1): unknown, forged, invisible or another record: 404.

    Looked for in the opened record only (its one shard on Citus): another record's document is an unknown id.
    """
    # An id beyond the column's range is traced as an unknown document rather than failing in the database.
    document = open_document(
        request.practitioner,
        document_id if document_id <= MAX_ID else None,
        mode=_mode(ref),
        client_address=client_address(request),
        profile_id=ref.profile_id,
    )
    if document is None or document.profile_id != ref.profile_id:
        raise Http404
    return document


@require_GET
@practitioner_required
def document(request, token, document_id):
    """The viewer: PDF and images drawn as page images on the server, text shown as text; each opening traced.

    The page images (``document_page``) are fetched within this viewing: no second trail entry.
    """
    ref, profile = _patient(request, token)
    document = _open_document_or_404(request, ref, document_id)
    grant_view(request, token, document.pk)
    preview = preview_of(document) if can_preview(document) else None
    text = None
    truncated = False
    if document.content_type in TEXT_TYPES:
        body = b""
        for chunk in read_body(document):
            body += chunk
            if len(body) >= TEXT_PREVIEW_BYTES:
                break
        truncated = document.size > TEXT_PREVIEW_BYTES
        text = body[:TEXT_PREVIEW_BYTES].decode("utf-8", errors="replace")
    context = _patient_context(
        ref,
        profile,
        document=document,
        preview=preview,
        page_urls=[
            (n, reverse("practitioners:document_page", args=[token, document.pk, n])) for n in preview.page_numbers
        ]
        if preview
        else [],
        text=text,
        truncated=truncated,
        format_label=content_types.LABELS.get(document.content_type, document.content_type),
    )
    return render(request, "practitioners/document.html", context)


def _viewed_document_or_404(request, token: str, document_id: int) -> Document:
    """A document fetched within a viewing of its page, or a new opening of it.

    Within the viewing the document page traced, it is read through the door's listing (the rules still apply: a
    block takes effect at once); fetched on its own, it is a new opening, traced.
    """
    ref = patient_ref(request, token)
    if ref is None:
        raise Http404
    if document_id <= MAX_ID and has_view_grant(request, token, document_id):
        document = (
            visible_documents(request.practitioner, Profile(pk=ref.profile_id), mode=_mode(ref))
            .filter(pk=document_id)
            .first()
        )
        if document is None:
            raise Http404
        return document
    document = _open_document_or_404(request, ref, document_id)
    grant_view(request, token, document.pk)
    return document


@require_GET
@xframe_options_sameorigin
@practitioner_required
def document_content(request, token, document_id):
    """The body inline (a direct link; the viewer itself shows page images)."""
    return _body_response(_viewed_document_or_404(request, token, document_id), as_attachment=False)


@require_GET
@practitioner_required
def document_page(request, token, document_id, number):
    """One page of the preview as an image (``no-store``), under the same door as the document itself."""
    return page_response(_viewed_document_or_404(request, token, document_id), number)


@require_GET
@practitioner_required
def document_download(request, token, document_id):
    """Download: a new opening of the document, traced (T1)."""
    ref = patient_ref(request, token)
    if ref is None:
        raise Http404
    return _body_response(_open_document_or_404(request, ref, document_id), as_attachment=True)


@require_POST
@practitioner_required
def release_hold(request, token, document_id):
    """A8: the author or the treating doctor makes a held document visible to the patient."""
    opened = _opened_patient(request, token)
    if opened is None:
        raise Http404
    ref, profile = opened
    document = visible_documents(request.practitioner, profile, mode=_mode(ref)).filter(pk=document_id).first()
    if document is None:
        raise Http404
    try:
        do_release_hold(document, actor=request.practitioner)
    except IllegalAction as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, _("Le document est désormais visible par le patient."))
    return redirect("practitioners:record", token=token)


# --- Deposit ----------------------------------------------------------------------------------------------


def _deposit_form(form_class, request, **kwargs):
    if request.method == "POST":
        return form_class(data=request.POST, files=request.FILES, **kwargs)
    return form_class(initial={"form_token": issue_form_token(request)}, **kwargs)


def _spend_form_token(request, form) -> str | None:
    """Consume the form's one-time token; returns where to go for a replay, or None to deposit now."""
    token = form.cleaned_data.get("form_token") or ""
    state = consume_form_token(request, token)
    if state == FormToken.FRESH:
        return None
    if state == FormToken.REPLAYED:
        messages.warning(request, REPLAYED_MESSAGE)
        return form_outcome(request, token) or reverse("practitioners:home")
    return ""  # unknown or expired: the form is shown again with a new token


def _refresh_token(form, request) -> None:
    form.data = form.data.copy()
    form.data["form_token"] = issue_form_token(request)


@never_cache
@require_http_methods(["GET", "POST"])
@practitioner_required
def deposit(request, token):
    """A10 for a patient found in this session (the record need not be opened)."""
    ref, profile = _patient(request, token)
    form = _deposit_form(DepositForm, request, minor=is_minor(profile.birth_date))
    if request.method == "POST" and form.is_valid():
        replay = _spend_form_token(request, form)
        if replay:
            return redirect(replay)
        if replay == "":
            form.add_error(None, EXPIRED_FORM_MESSAGE)
        else:
            try:
                document = do_deposit_document(
                    profile, actor=request.practitioner, **document_options(form.cleaned_data)
                )
            except (IllegalAction, RejectedFile) as exc:
                form.add_error(None, exc.messages[0])
            else:
                target = reverse("practitioners:record" if ref.is_open else "practitioners:patient", args=[token])
                remember_form_outcome(request, form.cleaned_data["form_token"], target)
                messages.success(
                    request,
                    _("Le document « %(title)s » a été déposé dans le dossier de %(name)s.")
                    % {"title": document.title, "name": profile.display_name},
                )
                return redirect(target)
        _refresh_token(form, request)
    return render(request, "practitioners/deposit.html", _patient_context(ref, profile, form=form))


@never_cache
@require_http_methods(["GET", "POST"])
@practitioner_required
def deposit_by_identity(request):
    """Deposit by identity traits without opening the record (A10), for every practitioner including a blocked one.

    The answer names the patient only when the identity look-up would have found them (``do_deposit_by_identity``),
    so a block stays invisible (A5).
    """
    form = _deposit_form(IdentityDepositForm, request)
    if request.method == "POST" and form.is_valid():
        replay = _spend_form_token(request, form)
        if replay:
            return redirect(replay)
        if replay == "":
            form.add_error(None, EXPIRED_FORM_MESSAGE)
        else:
            data = form.cleaned_data
            try:
                outcome = do_deposit_by_identity(
                    request.practitioner,
                    nir=data["nir"],
                    birth_date=data["birth_date"],
                    birth_name=data["birth_name"],
                    client_address=client_address(request),
                    **document_options(data),
                )
            except (IllegalAction, RejectedFile, LookupThrottled) as exc:
                form.add_error(None, exc.messages[0])
            else:
                if outcome.confirmed:
                    assert outcome.profile is not None  # a confirmed deposit names its profile
                    target = reverse("practitioners:patient", args=[remember_patient(request, outcome.profile.pk)])
                    messages.success(
                        request,
                        _("Le document « %(title)s » a été déposé dans le dossier de %(name)s.")
                        % {"title": data["title"], "name": outcome.profile.display_name},
                    )
                else:
                    target = reverse("practitioners:deposit_by_identity")
                    messages.info(request, RECEIPT_MESSAGE)
                remember_form_outcome(request, data["form_token"], target)
                return redirect(target)
        _refresh_token(form, request)
    return render(request, "practitioners/deposit_identity.html", {"form": form, "nav": "deposit"})


# --- Treating doctor, activity ----------------------------------------------------------------------------


@require_GET
@practitioner_required
def my_patients(request):
    """A6: the patients who declared this practitioner their treating doctor."""
    page = Paginator(
        profiles_treated_by(request.practitioner).only(
            "pk", "first_names", "birth_name", "usual_name", "birth_date", "state"
        ),
        LIST_PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    return render(request, "practitioners/my_patients.html", {"page": page, "nav": "patients"})


def _treated_or_404(request, profile_id: int) -> Profile:
    profile = profiles_treated_by(request.practitioner).filter(pk=profile_id).first()
    if profile is None:
        raise Http404
    return profile


@require_POST
@practitioner_required
def my_patient_open(request, profile_id):
    """From the treating doctor's list to the patient's page (opening still asks for the attestation, A1)."""
    profile = _treated_or_404(request, profile_id)
    return redirect("practitioners:patient", token=remember_patient(request, profile.pk))


def _trail_rows(entries):
    for entry in entries:
        entry.action_label = ACTION_LABELS.get(entry.action, entry.action)
        entry.mode_label = MODE_LABELS.get(entry.mode, entry.mode)
        entry.outcome_label = OUTCOME_LABELS.get(entry.outcome, entry.outcome)
    return entries


@require_GET
@practitioner_required
def patient_trail(request, profile_id):
    """A6, T3: the whole trail of a patient who declared this practitioner their treating doctor."""
    profile = _treated_or_404(request, profile_id)
    if not may_see_trail(request.practitioner, profile):
        raise Http404
    entries = trail_for_treating_doctor(request.practitioner, profile).only(
        "at", "actor_name", "actor_profession", "action", "mode", "outcome", "justification", "document_id"
    )
    page = Paginator(entries, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    _trail_rows(page.object_list)
    return render(request, "practitioners/patient_trail.html", {"profile": profile, "page": page, "nav": "patients"})


@require_GET
@practitioner_required
def activity(request):
    """The practitioner's own actions (T3).

    Refused attempts name no patient (``own_actions``); deposits name none and all read "transmis", so that a
    deposit by identity traits reveals nothing here either (A5).
    """
    page = Paginator(own_actions(request.practitioner), LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    named = {row["shown_profile_id"] for row in rows if row["shown_profile_id"] and row["action"] != Action.DEPOSIT}
    names = (
        {
            profile.pk: profile.display_name
            for profile in Profile.objects.filter(pk__in=named).only("pk", "first_names", "birth_name", "usual_name")
        }
        if named
        else {}
    )
    for row in rows:
        deposit_row = row["action"] == Action.DEPOSIT
        row["action_label"] = ACTION_LABELS.get(row["action"], row["action"])
        row["mode_label"] = MODE_LABELS.get(row["mode"], row["mode"])
        row["outcome_label"] = _("Transmis") if deposit_row else OUTCOME_LABELS.get(row["outcome"], row["outcome"])
        row["denied"] = row["outcome"] == TrailEntry.Outcome.DENIED and not deposit_row
        row["patient"] = "" if deposit_row else names.get(row["shown_profile_id"], "")
        row["document"] = None if deposit_row else row["shown_document_id"]
    return render(request, "practitioners/activity.html", {"page": page, "rows": rows, "nav": "activity"})
