"""Admin for the notice pipeline: notices, letters and print batches, all read-only (changes are actions).

Staff can filter notices by kind, status and channel, resend them (an audited action), download a letter or a
closed batch's merged PDF and manifest (decrypted on the fly; letter downloads are traced), close a batch
early, and see the daily counts (sent, failed, undeliverable, letters, pages).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from access_control.trail import record_entry
from records.actors import signed_in_account

from .actions import BatchActionError, NoticeActionError, do_mark_batch_handed, do_resend_notice
from .batches import batch_file_chunks, close_letter_batch, letter_pdf
from .models import BatchFile, Letter, Notice, PrintBatch

DAILY_DAYS = 14

# ModelAdmin is generic in the stubs only (it has no __class_getitem__ at run time); the read-only pages serve
# several models, so they take any.
if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    _ModelAdmin: TypeAlias = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin


class ReadOnlyAdmin(_ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def daily_counts(days: int = DAILY_DAYS) -> list[dict[str, Any]]:
    """Per day, newest first: notices sent, failed, undeliverable; letters filed and their pages (3 queries)."""
    today = timezone.localdate()
    since = timezone.now() - timedelta(days=days)
    rows = {
        today - timedelta(days=n): dict.fromkeys(("sent", "failed", "undeliverable", "letters", "pages"), 0)
        for n in range(days)
    }
    sent = (
        Notice.objects.filter(status=Notice.Status.SENT, sent_at__gte=since)
        .annotate(day=TruncDate("sent_at"))
        .values("day")
        .annotate(n=Count("pk"))
    )
    for row in sent:
        if row["day"] in rows:
            rows[row["day"]]["sent"] = row["n"]
    dead = (
        Notice.objects.filter(status__in=[Notice.Status.FAILED, Notice.Status.UNDELIVERABLE], updated_at__gte=since)
        .annotate(day=TruncDate("updated_at"))
        .values("day", "status")
        .annotate(n=Count("pk"))
    )
    for row in dead:
        if row["day"] in rows:
            rows[row["day"]][row["status"]] = row["n"]
    letters = (
        Letter.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("pk"), pages=Sum("page_count"))
    )
    for row in letters:
        if row["day"] in rows:
            rows[row["day"]]["letters"] = row["n"]
            rows[row["day"]]["pages"] = row["pages"] or 0
    return [{"day": day, **counts} for day, counts in sorted(rows.items(), reverse=True)]


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "status", "channel", "to", "practitioner", "attempts", "created_at", "sent_at")
    list_filter = ("kind", "status", "channel", "created_at")
    list_select_related = ("practitioner", "recipient_practitioner")
    show_full_result_count = False
    ordering = ("-created_at", "-pk")
    exclude = ("sealed_payload", "trail_entries", "dedupe_key")
    actions = ["resend"]

    @admin.display(description=_("destinataire"))
    def to(self, notice: Notice) -> str:
        doctor = notice.recipient_practitioner  # selected with the list
        if doctor is not None:
            return _("Médecin traitant : %(name)s") % {"name": doctor.display_name}
        return _("Patient (profil n° %(id)s)") % {"id": notice.profile_id}

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff and self.has_view_permission(request)

    @admin.action(description=_("Renvoyer les avis sélectionnés"), permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Notice]) -> None:
        done = refused = 0
        for notice in queryset.order_by("pk"):
            try:
                do_resend_notice(notice, actor=signed_in_account(request))
            except NoticeActionError as exc:
                refused += 1
                self.message_user(request, f"#{notice.pk} : {' '.join(exc.messages)}", messages.WARNING)
            else:
                done += 1
        if done:
            self.message_user(request, _("%(n)s avis renvoyé(s).") % {"n": done}, messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        urls = [
            path(
                "daily/",
                self.admin_site.admin_view(self.daily_view),
                name="notifications_notice_daily",
            )
        ]
        return urls + super().get_urls()

    def daily_view(self, request: HttpRequest) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Avis et lettres par jour"),
            "rows": daily_counts(),
        }
        return TemplateResponse(request, "admin/notifications/notice/daily.html", context)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "today": daily_counts(1)[0]}
        return super().changelist_view(request, extra_context=extra_context)


def _audited_letter_download(request: HttpRequest, letter: Letter) -> HttpResponse:
    # Staff reading a patient's letter is an admin action on patient data: traced (T1).
    with transaction.atomic():
        record_entry(
            profile=letter.notice.profile,
            action="letter_downloaded",
            actor=signed_in_account(request),
            detail=letter.reference,
        )
    response = HttpResponse(letter_pdf(letter), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="carnet-{letter.reference}.pdf"'
    return response


@admin.register(Letter)
class LetterAdmin(ReadOnlyAdmin):
    list_display = ("reference", "batch", "page_count", "postal_code", "country", "created_at", "download")
    list_filter = ("batch__status", "country")
    list_select_related = ("batch",)
    search_fields = ("=reference",)
    show_full_result_count = False
    exclude = ("wrapped_key", "storage_key", "master_key_id", "sha256")
    ordering = ("-pk",)

    @admin.display(description=_("PDF"))
    def download(self, letter: Letter) -> SafeString:
        url = reverse("admin:notifications_letter_pdf", args=[letter.pk])
        return format_html('<a href="{}">{}</a>', url, _("Télécharger"))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.pdf_view)
        return [path("<int:letter_id>/pdf/", view, name="notifications_letter_pdf"), *super().get_urls()]

    def pdf_view(self, request: HttpRequest, letter_id: int) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        letter = get_object_or_404(Letter.objects.select_related("notice__profile"), pk=letter_id)
        return _audited_letter_download(request, letter)


@admin.register(PrintBatch)
class PrintBatchAdmin(ReadOnlyAdmin):
    list_display = ("day", "status", "letter_count", "page_count", "closed_at", "handed", "downloads")
    list_filter = ("status", ("handed_at", admin.EmptyFieldListFilter))
    list_select_related = ("handed_by",)
    ordering = ("-day",)
    actions = ["close", "mark_handed"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PrintBatch]:
        return super().get_queryset(request).prefetch_related("files")

    @admin.display(description=_("remis au routeur"), ordering="handed_at")
    def handed(self, batch: PrintBatch) -> StrOrPromise:
        who = batch.handed_by
        if batch.handed_at is None or who is None:
            return _("Non")
        when = timezone.localtime(batch.handed_at)
        return _("Le %(when)s par %(who)s") % {
            "when": f"{when:%d/%m/%Y %H:%M}",
            "who": who.get_full_name() or who.get_username(),
        }

    @admin.action(description=_("Marquer comme remis au routeur (N4)"), permissions=["close"])
    def mark_handed(self, request: HttpRequest, queryset: QuerySet[PrintBatch]) -> None:
        done = 0
        for batch in queryset.order_by("day"):
            try:
                do_mark_batch_handed(batch, actor=signed_in_account(request))
            except BatchActionError as exc:
                self.message_user(request, f"{batch.day:%d/%m/%Y} : {' '.join(exc.messages)}", messages.WARNING)
            else:
                done += 1
        if done:
            self.message_user(request, _("%(n)s lot(s) marqué(s) remis au routeur.") % {"n": done}, messages.SUCCESS)

    @admin.display(description=_("fichiers"))
    def downloads(self, batch: PrintBatch) -> str:
        parts = {f.part for f in batch.files.all()}
        links = [
            format_html(
                '<a href="{}">{}</a>',
                reverse("admin:notifications_printbatch_file", args=[batch.pk, part]),
                label,
            )
            for part, label in BatchFile.Part.choices
            if part in parts
        ]
        return format_html(" · ".join(["{}"] * len(links)), *links) if links else "—"

    def has_close_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff and self.has_view_permission(request)

    @admin.action(description=_("Clôturer les lots sélectionnés (PDF fusionné et manifeste)"), permissions=["close"])
    def close(self, request: HttpRequest, queryset: QuerySet[PrintBatch]) -> None:
        for batch_id in queryset.order_by("day").values_list("pk", flat=True):
            close_letter_batch(batch_id)
        self.message_user(request, _("Lots clôturés."), messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.file_view)
        return [
            path("<int:batch_id>/<str:part>/", view, name="notifications_printbatch_file"),
            *super().get_urls(),
        ]

    def file_view(self, request: HttpRequest, batch_id: int, part: str) -> FileResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if part not in BatchFile.Part.values:
            raise Http404
        batch = get_object_or_404(PrintBatch, pk=batch_id, status=PrintBatch.Status.CLOSED)
        if not batch.files.filter(part=part).exists():
            raise Http404
        is_pdf = part == BatchFile.Part.PDF
        return FileResponse(
            batch_file_chunks(batch, part),
            as_attachment=True,
            filename=f"carnet-lot-{batch.day:%Y%m%d}.{'pdf' if is_pdf else 'csv'}",
            content_type="application/pdf" if is_pdf else "text/csv; charset=utf-8",
        )


@admin.register(BatchFile)
class BatchFileAdmin(ReadOnlyAdmin):
    """A closed batch's two files, listed without their content or keys (download from the batch list)."""

    list_display = ("batch", "part", "size")
    list_filter = ("part",)
    list_select_related = ("batch",)
    fields = ("batch", "part", "size")
    ordering = ("-batch__day", "part")

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Whoever may see the print batches may see their files' list (the content stays behind the batch).
        return super().has_view_permission(request, obj) or request.user.has_perm("notifications.view_printbatch")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)
