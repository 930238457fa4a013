"""Admin for accounts, profiles, the catalogue and documents: the lifecycle desk and the roster enrolment.

Profiles are never edited as forms and never browsed: staff find one by NIR **and** birth date (as
practitioners do, A11), land on its desk page, and change it only through the lifecycle actions of
``records.actions`` (L1-L10), each behind a form, a confirmation page stating the consequences, and the
staff member as actor, so every change is validated and traced (L9, T1). Documents are listed read-only and
their contents never shown. The roster upload runs ``records.enrolment`` inline, for files of up to
``ENROL_UPLOAD_MAX_BYTES`` (a few tens of thousands of rows: seconds); national files go through the
``enroll_patients`` command on a server, which runs the very same code.

Permissions (granted to the "Agents" and "Superviseurs" groups by ``records/migrations/0003_staff_groups``):
``records.view_profile`` to look profiles up, ``records.handle_counter_requests`` for what the person asks
(opposition, closure at their request, early deletion, re-opening, new code), ``records.decide_lifecycle``
for the health insurance's own decisions (suspension, administrative closure, death), and
``records.enrol_profiles`` for the roster upload.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from access_control.models import TrailEntry
from notifications.models import Notice
from plumbing.admin_steps import confirm_then_act, upload_then_report

from . import actions, lifecycle
from .enrolment import enrol_roster
from .identifiers import NIRField
from .models import Document, DocumentType, Profile, User
from .roster import RosterFormatError

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

PERM_VIEW = "records.view_profile"
PERM_ENROL = "records.enrol_profiles"
PERM_COUNTER = "records.handle_counter_requests"
PERM_DECIDE = "records.decide_lifecycle"
ENROL_UPLOAD_MAX_BYTES = 5 * 1024 * 1024  # ~25 000 rows; beyond, the enroll_patients command
ENROL_ERRORS_SHOWN = 200
DESK_TRAIL_ENTRIES = 20
DESK_NOTICES = 10

State = Profile.State


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class CarnetUserAdmin(UserAdmin):
    list_display = ("username", "email", "kind", "is_staff", "is_active", "last_login")
    list_filter = ("kind", "is_staff", "is_active", "groups")
    fieldsets = (*UserAdmin.fieldsets, ("Carnet", {"fields": ("kind", "preferred_language")}))  # type: ignore[misc]  # never None on UserAdmin


# --- Forms of the desk ------------------------------------------------------------------------------------


class ProfileLookupForm(forms.Form):
    """A11: NIR and birth date together; never a name."""

    nir = NIRField()
    birth_date = forms.DateField(
        label=_("Date de naissance"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


class ConfirmOnlyForm(forms.Form):
    """Actions that need nothing but the confirmation."""


class OppositionForm(forms.Form):
    METHOD_CODE = "code"
    METHOD_IDENTITY = "identity"

    method = forms.ChoiceField(
        label=_("Justification"),
        widget=forms.RadioSelect,
        choices=[
            (METHOD_CODE, _("La personne donne le code provisoire de sa notice")),
            (METHOD_IDENTITY, _("J'ai vérifié l'identité de la personne au guichet")),
        ],
    )
    provisional_code = forms.CharField(label=_("Code provisoire"), required=False, max_length=20)
    identity_checked = forms.BooleanField(
        label=_("J'atteste avoir vérifié l'identité de la personne sur une pièce d'identité originale."),
        required=False,
    )

    def __init__(self, *args, profile: Profile, **kwargs):
        super().__init__(*args, **kwargs)
        self.profile = profile

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if data.get("method") == self.METHOD_CODE and not data.get("provisional_code"):
            self.add_error("provisional_code", _("Saisissez le code provisoire de la notice."))
        elif data.get("method") == self.METHOD_CODE:
            # Checked before the confirmation page (issue 18): staff learn at once that the code is wrong.
            refusal = staff_code_refusal(self.profile, data["provisional_code"])
            if refusal:
                self.add_error("provisional_code", refusal)
        if data.get("method") == self.METHOD_IDENTITY and not data.get("identity_checked"):
            self.add_error("identity_checked", _("L'attestation de vérification d'identité est obligatoire."))
        return data


def staff_code_refusal(profile: Profile, code: str) -> "StrOrPromise | None":
    """What is wrong with the provisional code a person gives at the desk, said to staff; ``None`` if it is good."""
    if not lifecycle.provisional_code_matches(code, profile.provisional_code_hash):
        return _("Ce code provisoire ne correspond pas au profil de la personne. Vérifiez-le sur sa notice.")
    expires_at = profile.provisional_code_expires_at
    if expires_at is None or timezone.now() >= expires_at:
        return _(
            "Le code provisoire de la personne a expiré : vérifiez son identité au guichet, ou envoyez-lui un "
            "nouveau code."
        )
    return None


class SuspensionForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif (fraude, usage abusif…)"),
        max_length=64,
        help_text=_("64 caractères au plus ; conservé dans la trace."),
    )


class ClosureForm(forms.Form):
    reason = forms.ChoiceField(label=_("Motif de la clôture"), widget=forms.RadioSelect)

    def __init__(self, *args, reasons=(), **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["reason"]).choices = [(r, Profile.ClosureReason(r).label) for r in reasons]


class DeathForm(forms.Form):
    date_of_death = forms.DateField(
        label=_("Date du décès"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


class EnrolmentUploadForm(forms.Form):
    roster = forms.FileField(
        label=_("Fichier du référentiel (CSV, UTF-8)"),
        help_text=_("5 Mo au plus ; au-delà, utilisez la commande enroll_patients (voir docs/admin.md)."),
    )

    def clean_roster(self):
        roster = self.cleaned_data["roster"]
        if roster.size > ENROL_UPLOAD_MAX_BYTES:
            raise ValidationError(
                _("Ce fichier est trop gros pour la page (5 Mo au plus) : utilisez la commande enroll_patients.")
            )
        return roster


# --- The lifecycle actions offered at the desk ------------------------------------------------------------


def _closure_reasons(user: User) -> list[str]:
    reasons: list[str] = []
    if user.has_perm(PERM_COUNTER):
        reasons.append(Profile.ClosureReason.PATIENT)
    if user.has_perm(PERM_DECIDE):
        reasons.append(Profile.ClosureReason.ADMIN)
    return reasons


def _run_opposition(profile: Profile, data: dict[str, Any], user: User) -> Profile:
    if data["method"] == OppositionForm.METHOD_CODE:
        try:
            return actions.do_record_opposition(profile, actor=user, provisional_code=data["provisional_code"])
        except lifecycle.InvalidProvisionalCode:  # the code changed since the form checked it: said to staff
            raise ValidationError(
                _("Ce code provisoire ne correspond pas au profil de la personne. Vérifiez-le sur sa notice.")
            ) from None
    return actions.do_record_opposition(profile, actor=user, identity_checked=True)


def _run_reissue(profile: Profile, data: dict[str, Any], user: User) -> Profile:
    profile, _code = actions.do_reissue_provisional_code(profile, actor=user)
    return profile


def _may_reopen(profile: Profile, user: User) -> bool:
    if profile.deceased_at is not None or profile.closure_reason == Profile.ClosureReason.DECEASED:
        return False
    if profile.closure_reason == Profile.ClosureReason.PATIENT:
        return user.has_perm(PERM_COUNTER) or user.has_perm(PERM_DECIDE)
    return user.has_perm(PERM_DECIDE)


def _summary(form) -> list[tuple[str, str]]:
    """What the confirmation page repeats: each answered field, the provisional code hidden."""
    summary = []
    for name, field in form.fields.items():
        value = form.cleaned_data.get(name)
        if value in (None, "", False):
            continue
        if name == "provisional_code":
            value = "•" * 10
        elif isinstance(field, forms.ChoiceField):
            value = dict(field.choices).get(value, value)  # type: ignore[arg-type]  # the getter gives a list of pairs
        elif value is True:
            value = _("oui")
        elif hasattr(value, "strftime"):
            value = date_format(value, "SHORT_DATE_FORMAT")
        summary.append((field.label, value))
    return summary


@dataclass(frozen=True)
class DeskAction:
    slug: str
    label: "StrOrPromise"
    rule: str
    consequences: "StrOrPromise"
    success: "StrOrPromise"
    run: Callable
    form_class: type[forms.Form] = ConfirmOnlyForm
    states: tuple = ()
    permission: str = PERM_COUNTER
    allowed: Callable | None = None  # (profile, user) -> bool, instead of ``permission``

    def is_offered(self, profile: Profile, user: User) -> bool:
        if self.states and profile.state not in self.states:
            return False
        if self.allowed is not None:
            return self.allowed(profile, user)
        return user.has_perm(self.permission)

    def make_form(self, user: User, profile: Profile, data: QueryDict | None = None) -> forms.Form:
        if self.form_class is ClosureForm:
            return ClosureForm(data, reasons=_closure_reasons(user))
        if self.form_class is OppositionForm:
            return OppositionForm(data, profile=profile)
        return self.form_class(data)


DESK_ACTIONS = (
    DeskAction(
        slug="opposition",
        label=_("Enregistrer une opposition"),
        rule="L2",
        consequences=_(
            "Le profil ne sera jamais ouvert : aucun professionnel ne pourra le consulter ni l'alimenter, et la "
            "personne ne recevra plus que la confirmation de son opposition. L'opposition n'est possible que "
            "pendant le délai de 42 jours qui suit la notice."
        ),
        success=_("Opposition enregistrée ; la confirmation est envoyée à la personne."),
        run=_run_opposition,
        form_class=OppositionForm,
        states=(State.PENDING,),
    ),
    DeskAction(
        slug="reissue-code",
        label=_("Envoyer un nouveau code provisoire"),
        rule="L1",
        consequences=_(
            "Un nouveau code provisoire, valable 6 semaines, est envoyé à la personne (courriel ou courrier) ; "
            "l'ancien code cesse de fonctionner. Le délai d'opposition reste compté depuis la première notice."
        ),
        success=_("Nouveau code provisoire envoyé."),
        run=_run_reissue,
        states=(State.PENDING, State.OPEN),
    ),
    DeskAction(
        slug="suspend",
        label=_("Suspendre le profil"),
        rule="L7",
        consequences=_(
            "Plus aucun accès au profil (professionnels et titulaire) ; la personne en est informée. Sans "
            "contestation retenue, le profil sera clôturé automatiquement au bout de 42 jours."
        ),
        success=_("Profil suspendu ; la personne en est informée."),
        run=lambda profile, data, user: actions.do_suspend_profile(profile, actor=user, reason=data["reason"]),
        form_class=SuspensionForm,
        states=(State.OPEN, State.ACTIVE),
        permission=PERM_DECIDE,
    ),
    DeskAction(
        slug="lift-suspension",
        label=_("Lever la suspension"),
        rule="L7",
        consequences=_(
            "Le profil redevient accessible dans l'état où il était (activé, ou ouvert jamais activé) ; la "
            "personne en est informée."
        ),
        success=_("Suspension levée ; la personne en est informée."),
        run=lambda profile, data, user: actions.do_lift_suspension(profile, actor=user),
        states=(State.SUSPENDED,),
        permission=PERM_DECIDE,
    ),
    DeskAction(
        slug="close",
        label=_("Clôturer le profil"),
        rule="L5",
        consequences=_(
            "Plus aucun accès ni dépôt ; les documents et la trace sont archivés 10 ans puis supprimés. La "
            "personne en est informée et pourra demander la réouverture ou la suppression anticipée."
        ),
        success=_("Profil clôturé ; la personne en est informée."),
        run=lambda profile, data, user: actions.do_close_profile(profile, actor=user, reason=data["reason"]),
        form_class=ClosureForm,
        states=(State.OPEN, State.ACTIVE, State.SUSPENDED),
        allowed=lambda profile, user: bool(_closure_reasons(user)),
    ),
    DeskAction(
        slug="death",
        label=_("Enregistrer un décès"),
        rule="L8",
        consequences=_(
            "Le profil est clôturé (motif : décès), le compte ne peut plus se connecter et le profil ne pourra "
            "jamais être rouvert. Aucun avis n'est envoyé : les demandes des ayants droit sont traitées par "
            "l'Assurance Maladie."
        ),
        success=_("Décès enregistré ; le profil est clôturé."),
        run=lambda profile, data, user: actions.do_record_death(
            profile, actor=user, date_of_death=data["date_of_death"]
        ),
        form_class=DeathForm,
        permission=PERM_DECIDE,
        allowed=lambda profile, user: profile.deceased_at is None and user.has_perm(PERM_DECIDE),
    ),
    DeskAction(
        slug="early-deletion",
        label=_("Traiter une demande de suppression anticipée"),
        rule="L5",
        consequences=_(
            "Les données du profil clôturé (documents, trace, avis) seront définitivement supprimées dans les "
            "90 jours, sans retour possible après cette date. La personne est informée de la date."
        ),
        success=_("Suppression anticipée programmée ; la personne est informée de la date."),
        run=lambda profile, data, user: actions.do_request_early_deletion(profile, actor=user),
        states=(State.CLOSED,),
        allowed=lambda profile, user: profile.deletion_requested_at is None and user.has_perm(PERM_COUNTER),
    ),
    DeskAction(
        slug="reopen",
        label=_("Rouvrir le profil"),
        rule="L6",
        consequences=_(
            "Le profil retrouve ses documents et son historique ; il redevient accessible aux professionnels "
            "(activé, ou ouvert jamais activé). Une suppression anticipée prévue est annulée. La personne en "
            "est informée."
        ),
        success=_("Profil rouvert ; la personne en est informée."),
        run=lambda profile, data, user: actions.do_reopen_profile(profile, actor=user),
        states=(State.CLOSED,),
        allowed=_may_reopen,
    ),
)
DESK_ACTIONS_BY_SLUG = {action.slug: action for action in DESK_ACTIONS}


# --- Profiles ---------------------------------------------------------------------------------------------


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdmin):
    """No list and no form: a look-up page (NIR + birth date), the desk page, the roster upload."""

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.lookup_view), name="records_profile_changelist"),
            path("enrol/", wrap(self.enrol_view), name="records_profile_enrol"),
            path("<int:object_id>/", wrap(self.desk_view), name="records_profile_desk"),
            path("<int:object_id>/change/", wrap(self.desk_view), name="records_profile_change"),
            path("<int:object_id>/desk/<slug:slug>/", wrap(self.action_view), name="records_profile_action"),
        ]

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def lookup_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = ProfileLookupForm(request.GET or None)
        if form.is_valid():
            profile = (
                Profile.objects.filter(nir=form.cleaned_data["nir"], birth_date=form.cleaned_data["birth_date"])
                .only("pk")
                .first()
            )
            if profile is not None:
                return HttpResponseRedirect(reverse("admin:records_profile_desk", args=[profile.pk]))
            form.add_error(None, _("Aucun profil ne correspond à ce NIR et à cette date de naissance."))
        context = self._context(
            request,
            title=_("Trouver un profil"),
            form=form,
            may_enrol=request.user.has_perm(PERM_ENROL),
        )
        return TemplateResponse(request, "admin/records/profile/lookup.html", context)

    def desk_view(self, request, object_id):
        if not self.has_view_permission(request):
            raise PermissionDenied
        profile = get_object_or_404(Profile.objects.select_related("legal_representative"), pk=object_id)
        user = request.user
        trail = notices = None
        if user.has_perm("access_control.view_trailentry"):
            trail = list(TrailEntry.objects.filter(profile_id=profile.pk).order_by("-seq")[:DESK_TRAIL_ENTRIES])
        if user.has_perm("notifications.view_notice"):
            notices = list(Notice.objects.filter(profile_id=profile.pk).order_by("-created_at")[:DESK_NOTICES])
        context = self._context(
            request,
            title=str(profile),
            profile=profile,
            represented=profile.represented_profiles.count(),
            desk_actions=[action for action in DESK_ACTIONS if action.is_offered(profile, user)],
            trail=trail,
            notices=notices,
        )
        return TemplateResponse(request, "admin/records/profile/desk.html", context)

    def action_view(self, request, object_id, slug):
        action = DESK_ACTIONS_BY_SLUG.get(slug)
        if action is None or not self.has_view_permission(request):
            raise PermissionDenied
        profile = get_object_or_404(Profile, pk=object_id)
        user = request.user
        if not action.is_offered(profile, user):
            messages.error(request, _("Cette opération n'est pas possible pour ce profil ou pour votre rôle."))
            return HttpResponseRedirect(reverse("admin:records_profile_desk", args=[profile.pk]))
        form = action.make_form(user, profile, request.POST if request.method == "POST" else None)
        confirming, done = confirm_then_act(
            request,
            form,
            lambda data: action.run(profile, data, user),  # IllegalTransition and the actions' own checks (L9)
            action.success,
            reverse("admin:records_profile_desk", args=[profile.pk]),
        )
        if done:
            return done
        summary = _summary(form) if confirming else []  # second step: the consequences, then the same data again
        context = self._context(
            request,
            title=action.label,
            profile=profile,
            action=action,
            form=form,
            confirming=confirming,
            summary=summary,
        )
        return TemplateResponse(request, "admin/records/profile/desk_action.html", context)

    def enrol_view(self, request):
        if not request.user.has_perm(PERM_ENROL):
            raise PermissionDenied
        form = EnrolmentUploadForm(request.POST or None, request.FILES or None)
        report = upload_then_report(
            request,
            form,
            "roster",
            lambda roster: enrol_roster(roster, actor=request.user),
            RosterFormatError,
            lambda report: (
                _(
                    "%(created)d profils inscrits, %(known)d déjà inscrits, %(rejected)d lignes refusées ; "
                    "%(notices)d notices de pré-ouverture en file d'envoi."
                )
                % {
                    "created": report.created,
                    "known": report.already_enrolled,
                    "rejected": report.rejected,
                    "notices": report.notices,
                }
            ),
        )
        context = self._context(
            request,
            title=_("Inscrire des personnes depuis le référentiel"),
            form=form,
            report=report,
            errors=report.errors[:ENROL_ERRORS_SHOWN] if report else [],
            max_bytes=ENROL_UPLOAD_MAX_BYTES,
        )
        return TemplateResponse(request, "admin/records/profile/enrol.html", context)


@admin.register(DocumentType)
class DocumentTypeAdmin(ReadOnlyAdmin):
    list_display = ("code", "code_system", "label_fr", "label_en", "class_code")
    list_filter = ("class_code", "code_system")
    search_fields = ("code", "label_fr", "label_en")


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    """Metadata only: titles, names and contents are never shown (rule D, A4)."""

    list_display = ("id", "document_type", "author_kind", "deposited_at", "size", "content_type")
    list_filter = ("author_kind", "content_type")
    list_select_related = ("document_type",)
    show_full_result_count = False
    exclude = ("wrapped_key", "title", "original_name", "storage_key", "sha256")
