"""The patient's notification centre (issue 18, item 4): notices, new documents and accesses, with unread markers.

The items come through the doors the other pages use (``notices_for_profile``, ``documents_visible_to_patient``
through ``patient_documents``, ``trail_for_patient``), over the last ``CENTRE_DAYS`` days. Opening one marks it
read for the signed-in user (``notifications.inbox``) and leads to the notice list, the document or the trail.
The count in the portal bar is cached for ``COUNT_SECONDS`` per user and profile, and dropped when the user
reads something, so that a page costs no query for it most of the time.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from access_control.models import TrailEntry
from access_control.queries import trail_for_patient
from access_control.rules import EMERGENCY_MODES, Action
from notifications.inbox import mark_read, read_item_ids, read_marks
from notifications.models import Notice, ReadMark
from notifications.queries import notices_for_profile
from patients.portal import patient_documents, portal_view
from records.models import Document

CENTRE_DAYS = 90
PER_KIND = 30
COUNT_SECONDS = 60
KINDS = {kind.value for kind in ReadMark.Kind}


@dataclass
class Item:
    kind: str
    item_id: int
    at: datetime
    title: str
    detail: str = ""
    emergency: bool = False
    unread: bool = True


def _sources(request):
    """The three lists of the centre, as querysets of the doors, over the last ``CENTRE_DAYS`` days."""
    profile = request.current_profile
    since = timezone.now() - timedelta(days=CENTRE_DAYS)
    notices = notices_for_profile(profile).prefetch_related(None).filter(created_at__gte=since)
    documents = patient_documents(request).filter(author_kind=Document.AuthorKind.PRACTITIONER, deposited_at__gte=since)
    accesses = trail_for_patient(profile, as_legal_representative=request.acting_as_representative).filter(
        actor_kind=TrailEntry.ActorKind.PRACTITIONER,
        action=Action.OPEN_RECORD,
        outcome=TrailEntry.Outcome.ALLOWED,
        at__gte=since,
    )
    return {ReadMark.Kind.NOTICE: notices, ReadMark.Kind.DOCUMENT: documents, ReadMark.Kind.ACCESS: accesses}


def _count_key(request) -> str:
    return f"carnet:inbox-unread:{request.user.pk}:{request.current_profile.pk}"


def unread_count(request) -> int:
    """How many items of the centre the user has not opened yet (cached ``COUNT_SECONDS``)."""
    key = _count_key(request)
    count = cache.get(key)
    if count is None:
        count = sum(
            source.exclude(pk__in=read_item_ids(request.user, request.current_profile, kind)).count()
            for kind, source in _sources(request).items()
        )
        cache.set(key, count, COUNT_SECONDS)
    return count


def unread(request) -> dict:
    """Context processor: ``unread_notifications`` on portal pages, computed only if a template shows it."""
    if getattr(request, "current_profile", None) is None or not request.user.is_authenticated:
        return {}
    return {"unread_notifications": SimpleLazyObject(lambda: unread_count(request))}


def _items(request) -> list[Item]:
    sources = _sources(request)
    items = [
        Item(ReadMark.Kind.NOTICE, notice.pk, notice.created_at, str(notice.get_kind_display()),
             notice.practitioner.display_name if notice.practitioner_id else "", notice.kind == Notice.Kind.EMERGENCY)
        for notice in sources[ReadMark.Kind.NOTICE].select_related(None).select_related("practitioner")[:PER_KIND]
    ]  # fmt: skip
    items += [
        Item(ReadMark.Kind.DOCUMENT, document.pk, document.deposited_at, document.title,
             document.author_practitioner.display_name if document.author_practitioner_id else "")
        for document in sources[ReadMark.Kind.DOCUMENT][:PER_KIND]
    ]  # fmt: skip
    items += [
        Item(ReadMark.Kind.ACCESS, entry.pk, entry.at, str(_("Consultation de votre dossier")),
             entry.actor_name, entry.mode in EMERGENCY_MODES)
        for entry in sources[ReadMark.Kind.ACCESS].only("pk", "at", "actor_name", "mode")[:PER_KIND]
    ]  # fmt: skip
    seen = read_marks(request.user, request.current_profile)
    for item in items:
        item.unread = (item.kind, item.item_id) not in seen
    return sorted(items, key=lambda item: item.at, reverse=True)


@require_GET
@portal_view
def centre(request):
    items = _items(request)
    context = {"items": items, "unread_here": sum(item.unread for item in items), "days": CENTRE_DAYS}
    return render(request, "patients/notification_centre.html", context)


@require_GET
@portal_view
def open_item(request, kind, item_id):
    """Mark one item read and go to it; an item that is not in the current profile's centre is 404."""
    if kind not in KINDS or not _sources(request)[kind].filter(pk=item_id).exists():
        raise Http404("No such item.")
    mark_read(request.user, request.current_profile, [(kind, item_id)])
    cache.delete(_count_key(request))
    if kind == ReadMark.Kind.DOCUMENT:
        return redirect("patients:document", document_id=item_id)
    if kind == ReadMark.Kind.ACCESS:
        return redirect(reverse("patients:trail") + "?who=practitioners")
    return redirect("patients:notices")


@require_POST
@portal_view
def mark_all_read(request):
    mark_read(request.user, request.current_profile, [(item.kind, item.item_id) for item in _items(request)])
    cache.delete(_count_key(request))
    return redirect("patients:notification_centre")
