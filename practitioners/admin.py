"""Admin for the practitioner directory: the national extract import, suspension, markers.

The directory's own fields (names, profession, specialty, address) come from the national extract and are
read-only here; the import page (or the ``import_practitioners`` command) updates them in place. Staff set
only Carnet's markers (SAMU regulator A7, occupational physician and insurer physician A3) and suspend or
reinstate a practitioner, each through ``practitioners.actions`` with a trail entry naming them (T1).
Professions are seeded or created by the import, read-only here: the access matrix (A2) hangs on them.

Permissions: ``practitioners.view_practitioner`` to read, ``practitioners.change_practitioner`` for the
markers, ``practitioners.suspend_practitioner`` and ``practitioners.import_directory`` (staff groups in
``records/migrations/0003_staff_groups``).
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from plumbing.admin_steps import confirm_then_act, upload_then_report

from .actions import (
    MARKER_FIELDS,
    check_markers,
    do_reinstate_practitioner,
    do_set_practitioner_markers,
    do_suspend_practitioner,
)
from .directory import DirectoryFormatError, import_directory
from .models import Practitioner, Profession

PERM_IMPORT = "practitioners.import_directory"
PERM_SUSPEND = "practitioners.suspend_practitioner"
IMPORT_UPLOAD_MAX_BYTES = 10 * 1024 * 1024  # ~70 000 lines; the whole extract goes through the command
IMPORT_MESSAGES_SHOWN = 200


@admin.register(Profession)
class ProfessionAdmin(admin.ModelAdmin):
    list_display = ("code", "label_fr", "label_en", "is_doctor")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MarkersForm(forms.ModelForm):
    class Meta:
        model = Practitioner
        fields = list(MARKER_FIELDS)

    def clean(self):
        super().clean()
        data = self.cleaned_data
        try:
            check_markers(**{name: bool(data.get(name)) for name in MARKER_FIELDS})
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None
        return data


class StatusForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif"), max_length=64, help_text=_("64 caractères au plus ; conservé dans la trace.")
    )


class DirectoryUploadForm(forms.Form):
    extract = forms.FileField(
        label=_("Extraction de l'annuaire (CSV « ; », UTF-8)"),
        help_text=_("10 Mo au plus ; l'extraction nationale complète passe par la commande import_practitioners."),
    )

    def clean_extract(self):
        extract = self.cleaned_data["extract"]
        if extract.size > IMPORT_UPLOAD_MAX_BYTES:
            raise ValidationError(
                _("Ce fichier est trop gros pour la page (10 Mo au plus) : utilisez la commande import_practitioners.")
            )
        return extract


_STATUS_ACTIONS: dict[str, dict[str, Any]] = {
    "suspend": {
        "label": _("Suspendre ce professionnel"),
        "consequences": _(
            "Le professionnel ne peut plus se connecter ni ouvrir aucun dossier ; ses sessions en cours prennent "
            "fin à sa prochaine requête. Ses documents déjà déposés restent dans les dossiers."
        ),
        "success": _("Professionnel suspendu."),
        "run": do_suspend_practitioner,
        "from_status": Practitioner.Status.ACTIVE,
    },
    "reinstate": {
        "label": _("Rétablir ce professionnel"),
        "consequences": _("Le professionnel peut de nouveau se connecter et ouvrir les dossiers selon ses droits."),
        "success": _("Professionnel rétabli."),
        "run": do_reinstate_practitioner,
        "from_status": Practitioner.Status.SUSPENDED,
    },
}


@admin.register(Practitioner)
class PractitionerAdmin(admin.ModelAdmin):
    form = MarkersForm
    list_display = (
        "rpps",
        "last_name",
        "first_name",
        "profession",
        "specialty",
        "status",
        "is_samu_regulator",
        "is_occupational_physician",
        "is_insurer_physician",
    )
    list_filter = ("status", "profession", *MARKER_FIELDS)
    search_fields = ("=rpps", "last_name")
    list_select_related = ("profession",)
    show_full_result_count = False
    fields = (
        "rpps",
        "title",
        "last_name",
        "first_name",
        "profession",
        "specialty",
        "practice_address",
        "practice_postal_code",
        "practice_city",
        "email",
        "status",
        *MARKER_FIELDS,
    )
    readonly_fields = tuple(name for name in fields if name not in MARKER_FIELDS)

    def has_add_permission(self, request):
        return False  # practitioners come from the national extract

    def has_delete_permission(self, request, obj=None):
        return False  # suspend instead: the trail keeps referring to them

    def save_model(self, request, obj, form, change):
        # The admin's change form saves inside its own transaction (with its log entry): the action joins it.
        saved = do_set_practitioner_markers(
            obj, actor=request.user, durable=False, **{name: form.cleaned_data[name] for name in MARKER_FIELDS}
        )
        for name in MARKER_FIELDS:
            setattr(obj, name, getattr(saved, name))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="practitioners_practitioner_import"),
            path(
                "<int:object_id>/status/<slug:slug>/",
                wrap(self.status_view),
                name="practitioners_practitioner_status",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"may_import": request.user.has_perm(PERM_IMPORT), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"may_suspend": request.user.has_perm(PERM_SUSPEND), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def status_view(self, request, object_id, slug):
        spec = _STATUS_ACTIONS.get(slug)
        if spec is None or not request.user.has_perm(PERM_SUSPEND):
            raise PermissionDenied
        practitioner = get_object_or_404(Practitioner.objects.select_related("profession"), pk=object_id)
        change_url = reverse("admin:practitioners_practitioner_change", args=[practitioner.pk])
        form = StatusForm(request.POST if request.method == "POST" else None)
        confirming, done = confirm_then_act(
            request,
            form,
            lambda data: spec["run"](practitioner, actor=request.user, reason=data["reason"]),
            spec["success"],
            change_url,
        )
        if done:
            return done
        context = self._context(
            request,
            title=spec["label"],
            practitioner=practitioner,
            spec=spec,
            slug=slug,
            form=form,
            confirming=confirming,
            change_url=change_url,
        )
        return TemplateResponse(request, "admin/practitioners/practitioner/status.html", context)

    def import_view(self, request):
        if not request.user.has_perm(PERM_IMPORT):
            raise PermissionDenied
        form = DirectoryUploadForm(request.POST or None, request.FILES or None)
        report = upload_then_report(
            request,
            form,
            "extract",
            lambda extract: import_directory(extract, actor=request.user),
            DirectoryFormatError,
            lambda report: (
                _(
                    "%(created)d professionnels créés, %(updated)d mis à jour, %(unchanged)d inchangés, "
                    "%(rejected)d lignes refusées, %(warned)d avertissements."
                )
                % report.as_dict()
            ),
        )
        context = self._context(
            request,
            title=_("Importer l'annuaire des professionnels"),
            form=form,
            report=report,
            errors=report.errors[:IMPORT_MESSAGES_SHOWN] if report else [],
            warnings=report.warnings[:IMPORT_MESSAGES_SHOWN] if report else [],
        )
        return TemplateResponse(request, "admin/practitioners/practitioner/import.html", context)
