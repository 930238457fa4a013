"""The trail of the record as the patient sees it (T3), with its CSV download, and the notices.

Notices (N1, N2, N7): the preferences, the history and each letter's PDF. Changing the channel changes where the
consultation notices go: it asks for the step-up re-check, as the patient API does (the new-document switch
alone does not).
"""

from datetime import datetime, time
from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from access_control.models import AccessMode, TrailEntry
from access_control.queries import trail_for_patient
from access_control.rules import EMERGENCY_MODES, Action
from accounts.app_server import AppAction
from notifications.models import Letter
from notifications.queries import letter_pdf_for_patient, notices_for_profile
from patients.forms import NoticePreferencesForm, TrailFilterForm
from patients.portal import patient_documents, portal_view, step_up_before_post
from plumbing import csv_safe
from practitioners.models import Practitioner
from records.account_actions import PortalAction, do_set_notice_preferences, email_channel_possible
from records.health_summary import SummaryAction
from records.labels import profession_snapshot_label
from records.lifecycle import TrailAction

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

TRAIL_PAGE_SIZE = 50
NOTICE_PAGE_SIZE = 20
ACTION_LABELS = {
    **dict(Action.choices),
    **dict(TrailAction.choices),
    **dict(PortalAction.choices),
    **dict(SummaryAction.choices),
    **dict(AppAction.choices),
}
MODE_LABELS = dict(AccessMode.choices)


def _entries(request, form):
    entries = trail_for_patient(request.current_profile, as_legal_representative=request.acting_as_representative)
    if not form.is_valid():
        return entries
    data = form.cleaned_data
    if data["who"] == "practitioners":
        entries = entries.filter(actor_kind=TrailEntry.ActorKind.PRACTITIONER)
    elif data["who"] == "mine":
        entries = entries.filter(actor_user_id=request.user.pk, actor_kind=TrailEntry.ActorKind.PATIENT)
    if data["emergency"]:
        entries = entries.filter(mode__in=EMERGENCY_MODES)
    zone = timezone.get_current_timezone()
    if data["date_from"]:
        entries = entries.filter(at__gte=datetime.combine(data["date_from"], time.min, tzinfo=zone))
    if data["date_to"]:
        entries = entries.filter(at__lte=datetime.combine(data["date_to"], time.max, tzinfo=zone))
    return entries


def _trail_query(request):
    """The filters of the trail; without a choice of tab, the professionals' accesses (issue 18, item 4)."""
    query = request.GET.copy()
    query.setdefault("who", "practitioners")
    return query


class _Describer:
    """Turns entries into what the patient reads: document titles and named practitioners, in two queries."""

    def __init__(self, request, entries):
        document_ids = {entry.document_id for entry in entries if entry.document_id}
        self.titles = dict(patient_documents(request).filter(pk__in=document_ids).values_list("pk", "title"))
        rpps = {entry.detail[5:] for entry in entries if entry.detail.startswith("rpps:")}
        self.names = {
            p.rpps: p.display_name
            for p in Practitioner.objects.filter(rpps__in=rpps).only("rpps", "title", "first_name", "last_name")
        }

    def describe(self, entry) -> dict:
        what = str(ACTION_LABELS.get(entry.action, entry.action))
        target: StrOrPromise = ""
        if entry.document_id:
            target = self.titles.get(entry.document_id) or _("document non disponible")
        elif entry.detail.startswith("rpps:"):
            target = self.names.get(entry.detail[5:], "")
        return {
            "entry": entry,
            "what": what,
            "target": target,
            "mode": MODE_LABELS.get(entry.mode, entry.mode),
            "emergency": entry.mode in EMERGENCY_MODES,
            "denied": entry.outcome == TrailEntry.Outcome.DENIED,
        }


@require_GET
@portal_view
def trail(request):
    form = TrailFilterForm(_trail_query(request))
    page = Paginator(_entries(request, form), TRAIL_PAGE_SIZE).get_page(request.GET.get("page"))
    describer = _Describer(request, page.object_list)
    rows = [describer.describe(entry) for entry in page.object_list]
    query = "&".join(f"{key}={value}" for key, value in _trail_query(request).items() if key != "page")
    context = {"form": form, "page": page, "rows": rows, "query": query, "tab": _trail_query(request)["who"]}
    return render(request, "patients/trail.html", context)


class _Echo:
    def write(self, value):
        return value


@require_GET
@portal_view
def trail_csv(request):
    """T3: the trail as CSV (semicolons, as French spreadsheets expect), with the filters of the page."""
    form = TrailFilterForm(_trail_query(request))
    entries = list(_entries(request, form))
    describer = _Describer(request, entries)
    writer = csv_safe.writer(_Echo(), delimiter=";")
    header = [_("Date"), _("Qui"), _("Profession"), _("Action"), _("Objet"), _("Mode d'accès"), _("Résultat")]

    def rows():
        yield "\ufeff" + writer.writerow([str(title) for title in header])
        for entry in entries:
            row = describer.describe(entry)
            yield writer.writerow(
                [
                    timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M:%S"),
                    entry.actor_name + (f" ({entry.client_app})" if entry.client_app else ""),
                    profession_snapshot_label(entry.actor_profession),
                    row["what"],
                    str(row["target"]),
                    str(row["mode"]),
                    str(entry.get_outcome_display()),
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="carnet-historique-des-acces.csv"'
    return response


@require_GET
@portal_view
def notices(request):
    profile = request.current_profile
    form = NoticePreferencesForm(
        initial={"channel": profile.preferred_channel, "new_document_notices": profile.new_document_notices},
        email_possible=email_channel_possible(profile),
    )
    page = Paginator(notices_for_profile(profile), NOTICE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "patients/notices.html", {"form": form, "page": page, "profile": profile})


def _changes_channel(request) -> bool:
    """Sensitive: a valid channel other than the current one (an invalid one is refused without the re-check)."""
    profile, channel = request.current_profile, request.POST.get("channel")
    if channel == "email" and not email_channel_possible(profile):
        return False
    return channel in ("email", "post") and channel != profile.preferred_channel


@require_http_methods(["GET", "POST"])
@portal_view
@step_up_before_post("channel", "new_document_notices", when=_changes_channel)
def notice_preferences(request):
    """N2, N7: save the preferences; after the step-up, a GET shows the choice kept, to confirm."""
    profile = request.current_profile
    data = request.POST if request.method == "POST" else request.GET
    form = NoticePreferencesForm(data, email_possible=email_channel_possible(profile))
    if request.method == "GET" and form.is_valid():
        channels = dict(cast(list[tuple[str, str]], cast(forms.ChoiceField, form.fields["channel"]).choices))
        return render(
            request,
            "patients/confirm.html",
            {
                "title": _("Changer l'envoi de vos avis ?"),
                "consequences": _("Les avis de consultation vous seront envoyés %(channel)s.")
                % {"channel": channels[form.cleaned_data["channel"]]},
                "button": _("Enregistrer"),
                "action": request.path,
                "fields": {
                    "channel": form.cleaned_data["channel"],
                    **({"new_document_notices": "on"} if form.cleaned_data["new_document_notices"] else {}),
                },
                "cancel": reverse("patients:notices"),
            },
        )
    if form.is_valid():
        try:
            do_set_notice_preferences(
                profile,
                channel=form.cleaned_data["channel"],
                new_document_notices=form.cleaned_data["new_document_notices"],
                actor=request.user,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Vos préférences sont enregistrées."))
    else:
        for errors in form.errors.values():
            messages.error(request, " ".join(str(error) for error in errors))
    return redirect("patients:notices")


@require_GET
@portal_view
def letter_pdf(request, letter_id):
    try:
        letter = letter_pdf_for_patient(request.user, letter_id)
    except Letter.DoesNotExist:
        raise Http404("No such letter.") from None
    response = HttpResponse(letter.content, content_type=letter.content_type)
    response["Content-Disposition"] = f'inline; filename="{letter.filename}"'
    return response
