"""Admin pages for the access rules, the trail and the review queue.

Staff edit only the matrix (A2), through ``do_set_access_rule`` so that every change is traced; they mark
emergency and high-profile accesses as reviewed (A7, A13) through ``do_review_access``. Everything else here is
a patient's decision or the trail itself, shown read-only (T2: the trail is append-only).
"""

from __future__ import annotations

import io
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from plumbing import csv_safe
from plumbing.charts import BLUE, GREEN, RED, Series, chart
from records.actors import signed_in_account

from .actions import do_review_access, do_set_access_rule
from .labels import ACTIONS, action_label, detail_label, reason_label
from .models import (
    AccessRule,
    ApiToken,
    Block,
    CategoryMask,
    DocumentCategory,
    OccupationalAuthorisation,
    Review,
    TrailEntry,
    TreatingRightsGrant,
)
from .queries import curiosity_report
from .tokens import do_revoke_token_by_staff

CURIOSITY_DAYS = 30
CURIOSITY_MAX_ROWS = 500
CURIOSITY_CHART_ROWS = 20  # the chart shows the first rows (the most unusual); the table shows them all

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


@admin.register(AccessRule)
class AccessRuleAdmin(_ModelAdmin):
    """A2: one row per profession and document type; a pair absent from the table is denied."""

    list_display = ("profession", "document_type", "may_read")
    list_filter = ("may_read", "profession", "document_type__class_code")
    search_fields = ("document_type__code", "document_type__label_fr")
    list_select_related = ("profession", "document_type")
    ordering = ("profession__code", "document_type__code")
    actions = ["allow_reading", "deny_reading"]

    def get_readonly_fields(self, request: HttpRequest, obj: AccessRule | None = None) -> tuple[str, ...]:
        return ("profession", "document_type") if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: AccessRule | None = None) -> bool:
        return False  # deny a pair instead: the change is traced

    def save_model(
        self, request: HttpRequest, obj: AccessRule, form: forms.ModelForm[AccessRule], change: bool
    ) -> None:
        # The admin's change form saves inside its own transaction (with its log entry): the action joins it.
        rule = do_set_access_rule(
            obj.profession, obj.document_type, obj.may_read, actor=signed_in_account(request), durable=False
        )
        obj.pk = rule.pk

    def _set(self, request: HttpRequest, queryset: QuerySet[AccessRule], may_read: bool) -> None:
        for rule in queryset.select_related("profession", "document_type"):
            do_set_access_rule(rule.profession, rule.document_type, may_read, actor=signed_in_account(request))
        self.message_user(request, _("Matrice d'accès mise à jour."), messages.SUCCESS)

    @admin.action(description=_("Autoriser la lecture"))
    def allow_reading(self, request: HttpRequest, queryset: QuerySet[AccessRule]) -> None:
        self._set(request, queryset, True)

    @admin.action(description=_("Interdire la lecture"))
    def deny_reading(self, request: HttpRequest, queryset: QuerySet[AccessRule]) -> None:
        self._set(request, queryset, False)


@admin.register(DocumentCategory)
class DocumentCategoryAdmin(ReadOnlyAdmin):
    list_display = ("code", "label_fr", "label_en")
    filter_horizontal = ("document_types",)


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = ("profile_id", "practitioner", "created_at")
    list_select_related = ("practitioner",)
    show_full_result_count = False


@admin.register(CategoryMask)
class CategoryMaskAdmin(ReadOnlyAdmin):
    list_display = ("profile_id", "category", "created_at")
    list_select_related = ("category",)
    show_full_result_count = False


@admin.register(OccupationalAuthorisation, TreatingRightsGrant)
class PatientGrantAdmin(ReadOnlyAdmin):
    """Rights a patient gave one practitioner (A3, A4): changed only by the patient, in the portal."""

    list_display = ("profile_id", "practitioner", "granted_at")
    list_select_related = ("practitioner",)
    show_full_result_count = False


class ActionFilter(admin.SimpleListFilter):
    """The trail's actions by their labels (the codes stay in the URL)."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, StrOrPromise]]:
        return sorted(ACTIONS.items(), key=lambda item: str(item[1]))

    def queryset(self, request: HttpRequest, queryset: QuerySet[TrailEntry]) -> QuerySet[TrailEntry]:
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(TrailEntry)
class TrailEntryAdmin(ReadOnlyAdmin):
    list_display = (
        *("at", "profile_id", "seq", "actor_kind", "actor_name"),
        *("action_shown", "detail_shown", "mode", "outcome", "reason_shown"),
    )
    list_filter = ("outcome", "mode", "actor_kind", ActionFilter)
    search_fields = ("=profile__id", "=actor_rpps")
    date_hierarchy = "at"
    show_full_result_count = False
    ordering = ("-at",)

    @admin.display(description=_("action"), ordering="action")
    def action_shown(self, entry: TrailEntry) -> StrOrPromise:
        return action_label(entry.action)

    @admin.display(description=_("détail"))
    def detail_shown(self, entry: TrailEntry) -> str:
        return detail_label(entry.detail)

    @admin.display(description=_("motif"))
    def reason_shown(self, entry: TrailEntry) -> StrOrPromise:
        return reason_label(entry.reason)


def curiosity_name(row: dict[str, Any]) -> str:
    """The practitioner's name of a curiosity report row (title, first name, last name)."""
    parts = ("actor_practitioner__title", "actor_practitioner__first_name", "actor_practitioner__last_name")
    return " ".join(row[part] for part in parts if row[part])


def curiosity_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The curiosity report's rows as a chart (issue 18): openings, deposits and high-profile openings per name."""
    rows = rows[:CURIOSITY_CHART_ROWS]
    names = [curiosity_name(row) for row in rows]
    return chart(
        "curiosity",
        _("Consultations, dépôts et profils sensibles consultés, par professionnel signalé"),
        names,
        [
            Series(_("Consultations"), [row["openings"] for row in rows], BLUE),
            Series(_("Dépôts"), [row["deposits"] for row in rows], GREEN),
            Series(_("Profils sensibles consultés"), [row["high_profile_openings"] for row in rows], RED),
        ],
        horizontal=True,
        label_heading=_("Professionnel"),
    )


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    """A7, A13: the queue of emergency and high-profile accesses, oldest unreviewed first."""

    list_display = ("created_at", "kind", "profile_id", "practitioner", "alerted_at", "reviewed_at", "reviewed_by")
    list_filter = ("kind", ("reviewed_at", admin.EmptyFieldListFilter))
    list_select_related = ("practitioner", "reviewed_by")
    ordering = ("reviewed_at", "created_at")
    show_full_result_count = False
    actions = ["mark_reviewed"]
    change_list_template = "admin/access_control/review/change_list.html"

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # The changelist and its action for those allowed to change reviews; never an edit form (the action
        # is the only way a review changes, and it is traced).
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request)

    @admin.action(description=_("Marquer comme revu"), permissions=["change"])
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[Review]) -> None:
        done = 0
        for review in queryset.filter(reviewed_at__isnull=True):
            try:
                do_review_access(review, actor=signed_in_account(request))
            except ValidationError as error:
                self.message_user(request, "; ".join(error.messages), messages.ERROR)
                return
            done += 1
        self.message_user(request, _("%(count)d accès revus.") % {"count": done}, messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.curiosity_view)
        csv_view = self.admin_site.admin_view(self.curiosity_csv_view)
        return [
            path("curiosite/", view, name="access_control_review_curiosity"),
            path("curiosite.csv", csv_view, name="access_control_review_curiosity_csv"),
            *super().get_urls(),
        ]

    def curiosity_view(self, request: HttpRequest) -> TemplateResponse:
        """Issue 7 item 6: practitioners who open many records and deposit little, or open high-profile ones."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = CuriosityForm(request.GET or None)
        today = timezone.localdate()
        start, end = today - timedelta(days=CURIOSITY_DAYS), today
        min_openings, min_ratio = CuriosityForm.MIN_OPENINGS, CuriosityForm.MIN_RATIO
        rows: list[dict[str, Any]] = []
        valid = not form.is_bound or form.is_valid()  # a bad period shows its errors and no report
        if form.is_bound and valid:
            data = form.cleaned_data
            start, end = data["since"] or start, data["until"] or end
            min_openings = data["min_openings"] if data["min_openings"] is not None else min_openings
            min_ratio = data["min_ratio"] if data["min_ratio"] is not None else min_ratio
        if valid:
            since = timezone.make_aware(datetime.combine(start, time.min))
            until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
            report = curiosity_report(since, until, min_openings=min_openings, min_ratio=min_ratio)
            rows = list(report[:CURIOSITY_MAX_ROWS])
        if not form.is_bound:
            initial = {"since": start, "until": end, "min_openings": min_openings, "min_ratio": min_ratio}
            form = CuriosityForm(initial=initial)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Rapport de curiosité"),
            "form": form,
            "rows": rows,
            "since": start,
            "until": end,
            "min_openings": min_openings,
            "min_ratio": min_ratio,
            "max_rows": CURIOSITY_MAX_ROWS,
            "chart": curiosity_chart(rows),
        }
        return TemplateResponse(request, "admin/access_control/curiosity_report.html", context)

    def curiosity_csv_view(self, request: HttpRequest) -> HttpResponse:
        """The curiosity report as CSV, with the page's period and thresholds (same rows, same permission).

        Semicolons and a BOM, as French spreadsheets expect; every cell goes through ``plumbing.csv_safe``, so a
        name that starts like a formula (``=HYPERLINK(…)``) is read as text. A bad period sends back to the page,
        which shows its errors.
        """
        page = self.curiosity_view(request)  # the permission check, the form and the one report query
        context = page.context_data or {}
        if context["form"].is_bound and not context["form"].is_valid():
            return HttpResponseRedirect(f"{reverse('admin:access_control_review_curiosity')}?{request.GET.urlencode()}")
        buffer = io.StringIO()
        buffer.write("\ufeff")
        writer = csv_safe.writer(buffer, delimiter=";")
        header = [
            _("Professionnel"),
            _("Profession"),
            _("RPPS"),
            _("Consultations"),
            _("Dépôts"),
            _("Consultations par dépôt"),
            _("Profils sensibles consultés"),
            _("Inhabituel"),
        ]
        writer.writerow([str(title) for title in header])
        for row in context["rows"]:
            name = curiosity_name(row)
            writer.writerow(
                [
                    name,
                    row["actor_practitioner__profession__label_fr"],
                    row["actor_practitioner__rpps"],
                    row["openings"],
                    row["deposits"],
                    round(row["ratio"], 1),
                    row["high_profile_openings"],
                    str(_("oui") if row["unusual"] else _("non")),
                ]
            )
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        filename = f"carnet-curiosite-{context['since']:%Y%m%d}-{context['until']:%Y%m%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class CuriosityForm(forms.Form):
    MIN_OPENINGS = 20
    MIN_RATIO = 10.0

    since = forms.DateField(label=_("Du"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("Au (inclus)"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    min_openings = forms.IntegerField(label=_("Consultations au moins"), required=False, min_value=1)
    min_ratio = forms.FloatField(label=_("Consultations par dépôt au moins"), required=False, min_value=0)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError(_("La date de début doit précéder la date de fin."), code="period")
        return data


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """API tokens, read-only; the secret's digest is never shown. Staff may revoke a token (traced, T1)."""

    list_display = ("user", "name", "scope", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    list_select_related = ("user",)
    search_fields = ("=prefix", "=user__username")
    fields = ("user", "name", "scope", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    ordering = ("-created_at", "-pk")
    show_full_result_count = False
    actions = ["revoke"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff and self.has_view_permission(request)

    @admin.action(description=_("Révoquer les jetons sélectionnés"), permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        done = 0
        for token in queryset.filter(revoked_at__isnull=True).select_related("user").order_by("pk"):
            do_revoke_token_by_staff(token, actor=signed_in_account(request))
            done += 1
        self.message_user(request, _("%(count)d jeton(s) révoqué(s).") % {"count": done}, messages.SUCCESS)
