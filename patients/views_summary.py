"""The patient's health summary (« profil médical »): read it, add and remove lines, mask it from practitioners.

The holder or the legal representative (L10) keeps it for the current profile; each change is an action of
``records.health_summary`` with its trail entry (T1). Practitioners read it under the rules of a
patient-deposited synthesis (A2, A4, A12), which the page explains.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from patients.forms import DateInput
from patients.portal import portal_view
from records.health_summary import (
    SummaryRefused,
    do_add_health_summary_entry,
    do_mask_health_summary,
    do_remove_health_summary_entry,
    summary_for_patient,
)
from records.models import HealthSummaryEntry

Kind = HealthSummaryEntry.Kind

# Per part: the words of its fields (label, details, date) and what its add button says.
FIELD_WORDS = {
    Kind.ALLERGY: (_("Substance, aliment ou médicament"), _("Réaction (facultatif)"), None, _("Ajouter une allergie")),
    Kind.TREATMENT: (_("Médicament ou traitement"), _("Posologie (facultatif)"), _("Depuis le (facultatif)"), _("Ajouter un traitement")),
    Kind.VACCINATION: (_("Vaccin"), _("Précisions : rappel, lot (facultatif)"), _("Date de l'injection (facultatif)"), _("Ajouter une vaccination")),
    Kind.HISTORY: (_("Maladie, opération ou hospitalisation"), _("Précisions (facultatif)"), _("Date (facultatif)"), _("Ajouter un antécédent")),
    Kind.EMERGENCY_CONTACT: (_("Nom et prénom"), _("Lien : conjoint, enfant, voisin… (facultatif)"), None, _("Ajouter une personne à prévenir")),
}  # fmt: skip


class EntryForm(forms.Form):
    """One line of one part of the summary; the part is fixed by the form's prefix."""

    label = forms.CharField(max_length=200)
    detail = forms.CharField(max_length=300, required=False)
    on_date = forms.DateField(required=False, widget=DateInput())
    phone = forms.CharField(
        label=_("Téléphone"),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}),
    )

    def __init__(self, kind: str, data=None):
        super().__init__(data, prefix=kind)
        self.kind = kind
        label, detail, on_date, self.submit_label = FIELD_WORDS[Kind(kind)]
        self.fields["label"].label = label
        self.fields["detail"].label = detail
        if on_date is None:
            del self.fields["on_date"]
        else:
            self.fields["on_date"].label = on_date
        if kind == Kind.EMERGENCY_CONTACT:
            self.fields["phone"].required = True
        else:
            del self.fields["phone"]


def _page(request, forms_by_kind: dict | None = None, status: int = 200):
    profile = request.current_profile
    summary = summary_for_patient(request.user, profile)
    forms_by_kind = forms_by_kind or {}
    parts = [
        (kind, label, entries, forms_by_kind.get(kind) or EntryForm(kind)) for kind, label, entries in summary.sections
    ]
    context = {"summary": summary, "parts": parts, "may_mask": profile.state == profile.State.ACTIVE}
    return render(request, "patients/health_summary.html", context, status=status)


@require_GET
@portal_view
def health_summary(request):
    return _page(request)


@require_POST
@portal_view
def add_entry(request, kind):
    """Add one line to one part; a mistake shows the page again with the form's errors, nothing saved."""
    if kind not in Kind.values:
        messages.error(request, _("Choisissez une rubrique du profil médical."))
        return redirect("patients:health_summary")
    form = EntryForm(kind, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            do_add_health_summary_entry(
                request.current_profile,
                kind=kind,
                label=data["label"],
                detail=data["detail"],
                on_date=data.get("on_date"),
                phone=data.get("phone", ""),
                actor=request.user,
            )
        except SummaryRefused as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request, _("« %(label)s » a été ajouté à votre profil médical.") % {"label": data["label"]}
            )
            return redirect(f"{reverse('patients:health_summary')}#part-{kind}")
    return _page(request, {kind: form}, status=400)


@require_POST
@portal_view
def remove_entry(request, entry_id):
    try:
        entry = do_remove_health_summary_entry(request.current_profile, entry_id, actor=request.user)
    except SummaryRefused as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("patients:health_summary")
    messages.success(request, _("« %(label)s » a été retiré de votre profil médical.") % {"label": entry.label})
    return redirect(f"{reverse('patients:health_summary')}#part-{entry.kind}")


@require_POST
@portal_view
def mask_summary(request):
    """A4: mask the summary from practitioners (the treating doctor still sees it), or unmask it."""
    masked = request.POST.get("operation") == "mask"
    try:
        do_mask_health_summary(request.current_profile, masked=masked, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("Votre profil médical est masqué aux professionnels de santé, sauf à votre médecin traitant.")
            if masked
            else _("Votre profil médical n'est plus masqué."),
        )
    return redirect(f"{reverse('patients:health_summary')}#visibility")
