"""« Qui peut voir mon dossier » : who may see the record, and the patient's settings of it.

Blocks (A5), the treating doctor (A6), the treating doctor's rights granted to other practitioners (A4), the
emergency opt-out (A7), the occupational physician's authorisation (A3), and a plain-language summary of the
current settings.

Practitioners are chosen from the public directory, searched by name, profession and city. What widens access
or takes away the emergency safety net asks for the step-up re-check, as the patient API does: unblocking
(``patients.portal.step_up_required``), the emergency opt-out either way, declaring the treating doctor,
granting the treating doctor's rights or an occupational authorisation (``patients.portal.step_up_before_post``:
after the re-check, a confirmation page carries the patient's choice). Blocking and withdrawing only narrow
access: no re-check. Every change is an access-control action; a replayed form finds the change already made
and changes nothing.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access_control.actions import (
    do_authorise_occupational_physician,
    do_block_practitioner,
    do_declare_treating_doctor,
    do_grant_treating_rights,
    do_remove_treating_doctor,
    do_revoke_occupational_physician,
    do_revoke_treating_rights,
    do_set_emergency_opt_out,
    do_unblock_practitioner,
)
from access_control.models import Block, CategoryMask, OccupationalAuthorisation, TreatingRightsGrant
from patients.forms import DirectorySearchForm
from patients.portal import portal_view, step_up_before_post, step_up_required
from practitioners.models import Practitioner, Profession

DIRECTORY_LIMIT = 25


def directory(practitioners_form) -> list:
    """The public directory: practitioners in practice, insurers' physicians left out (A3: never any access)."""
    data = practitioners_form.cleaned_data
    found = Practitioner.objects.filter(status=Practitioner.Status.ACTIVE, is_insurer_physician=False)
    if data["name"]:
        found = found.filter(Q(last_name__icontains=data["name"]) | Q(first_name__icontains=data["name"]))
    if data["profession"]:
        found = found.filter(profession__code=data["profession"])
    if data["city"]:
        found = found.filter(practice_city__icontains=data["city"])
    return list(found.select_related("profession").order_by("last_name", "first_name", "pk")[:DIRECTORY_LIMIT])


@require_GET
@portal_view
def privacy(request):
    profile = request.current_profile
    blocks = list(Block.objects.filter(profile=profile).select_related("practitioner__profession").order_by("pk"))
    authorisations = list(
        OccupationalAuthorisation.objects.filter(profile=profile)
        .select_related("practitioner__profession")
        .order_by("pk")
    )
    grants = list(
        TreatingRightsGrant.objects.filter(profile=profile).select_related("practitioner__profession").order_by("pk")
    )
    professions = list(Profession.objects.order_by("label_fr"))
    search = DirectorySearchForm(request.GET or None, professions=professions)
    results = directory(search) if search.is_bound and search.is_valid() else None
    blocked_ids = {block.practitioner_id for block in blocks}
    authorised_ids = {authorisation.practitioner_id for authorisation in authorisations}
    granted_ids = {grant.practitioner_id for grant in grants}
    for practitioner in results or ():
        practitioner.is_blocked = practitioner.pk in blocked_ids
        practitioner.is_authorised = practitioner.pk in authorised_ids
        practitioner.is_granted = practitioner.pk in granted_ids
    context = {
        "profile": profile,
        "treating_doctor": profile.treating_doctor,
        "blocks": blocks,
        "authorisations": authorisations,
        "grants": grants,
        "search": search,
        "results": results,
        "masked_categories": CategoryMask.objects.filter(profile=profile).count(),
        "may_restrict": profile.state == profile.State.ACTIVE,
        "back": request.get_full_path(),
    }
    return render(request, "patients/privacy/privacy.html", context)


def _field(request, name: str) -> str:
    """A field of the form posted, or of the confirmation page's query string after the step-up."""
    return (request.POST if request.method == "POST" else request.GET).get(name, "")


def _practitioner(request) -> Practitioner:
    wanted = _field(request, "practitioner")
    if not wanted.isascii() or not wanted.isdigit():  # "abc" would reach the database as a bad integer
        raise Http404("No such practitioner.")
    return get_object_or_404(Practitioner.objects.select_related("profession"), pk=int(wanted))


def _confirm(request, *, title, consequences, button, fields: dict[str, str]):
    """The confirmation page shown after the step-up: the patient's choice, posted again by one button."""
    back = _field(request, "back")
    context = {
        "title": title,
        "consequences": consequences,
        "button": button,
        "action": request.path,
        "fields": {**fields, **({"back": back} if back.startswith("/confidentialite/") else {})},
        "cancel": back if back.startswith("/confidentialite/") else reverse("patients:privacy"),
    }
    return render(request, "patients/confirm.html", context)


def _widens(request) -> bool:
    """Giving (a right, the treating doctor) is sensitive; withdrawing only narrows access."""
    return request.POST.get("operation") not in ("remove", "revoke")


def _run(request, action, success) -> None:
    try:
        action()
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, success)


def _back(request):
    back = request.POST.get("back", "")
    return redirect(back if back.startswith("/confidentialite/") else "patients:privacy")


@require_POST
@portal_view
def block(request):
    practitioner = _practitioner(request)
    _run(
        request,
        lambda: do_block_practitioner(request.current_profile, practitioner, actor=request.user),
        _("%(name)s est bloqué : il ne peut plus consulter votre dossier, même en urgence.")
        % {"name": practitioner.display_name},
    )
    return _back(request)


@require_http_methods(["GET", "POST"])
@portal_view
@step_up_required
def unblock(request, practitioner_id):
    """A5: lifting a block is confirmed on its own page, after the step-up re-check."""
    practitioner = get_object_or_404(Practitioner.objects.select_related("profession"), pk=practitioner_id)
    is_blocked = Block.objects.filter(profile=request.current_profile, practitioner=practitioner).exists()
    if request.method == "POST":
        if is_blocked:
            _run(
                request,
                lambda: do_unblock_practitioner(request.current_profile, practitioner, actor=request.user),
                _("%(name)s n'est plus bloqué.") % {"name": practitioner.display_name},
            )
        else:
            messages.info(request, _("%(name)s n'est pas bloqué.") % {"name": practitioner.display_name})
        return redirect("patients:privacy")
    if not is_blocked:
        messages.info(request, _("%(name)s n'est pas bloqué.") % {"name": practitioner.display_name})
        return redirect("patients:privacy")
    return render(request, "patients/privacy/unblock.html", {"practitioner": practitioner})


@require_http_methods(["GET", "POST"])
@portal_view
@step_up_before_post("practitioner", "back", when=_widens)
def treating_doctor(request):
    """A6: declare the treating doctor (after the step-up: he reads masked documents and the trail), or remove."""
    profile = request.current_profile
    if request.method == "GET":
        practitioner = _practitioner(request)
        return _confirm(
            request,
            title=_("Déclarer %(name)s comme médecin traitant ?") % {"name": practitioner.display_name},
            consequences=_(
                "%(name)s verra tout votre dossier, y compris les documents masqués, et l'historique des accès."
            )
            % {"name": practitioner.display_name},
            button=_("Déclarer comme médecin traitant"),
            fields={"practitioner": str(practitioner.pk)},
        )
    if request.POST.get("operation") == "remove":
        _run(
            request,
            lambda: do_remove_treating_doctor(profile, actor=request.user),
            _("Vous n'avez plus de médecin traitant déclaré."),
        )
    else:
        practitioner = _practitioner(request)
        _run(
            request,
            lambda: do_declare_treating_doctor(profile, practitioner, actor=request.user),
            _("%(name)s est votre médecin traitant.") % {"name": practitioner.display_name},
        )
    return _back(request)


@require_http_methods(["GET", "POST"])
@portal_view
@step_up_before_post("opt_out", "back")
def emergency(request):
    """A7: refuse emergency access, or accept it again; sensitive either way (after the step-up)."""
    opt_out = _field(request, "opt_out") == "1"
    if request.method == "GET":
        return _confirm(
            request,
            title=_("Refuser l'accès en urgence ?") if opt_out else _("Accepter de nouveau l'accès en urgence ?"),
            consequences=_("Personne ne pourra ouvrir votre dossier en urgence, même pour vous soigner.")
            if opt_out
            else _("Un professionnel de santé pourra ouvrir votre dossier en urgence ; vous en serez averti aussitôt."),
            button=_("Refuser l'accès en urgence") if opt_out else _("Accepter de nouveau l'accès en urgence"),
            fields={"opt_out": "1" if opt_out else "0"},
        )
    success = (
        _("L'accès en urgence à votre dossier est refusé.")
        if opt_out
        else _("L'accès en urgence à votre dossier est de nouveau possible.")
    )
    _run(request, lambda: do_set_emergency_opt_out(request.current_profile, opt_out, actor=request.user), success)
    return _back(request)


def _give_or_withdraw(request, give, withdraw, given, withdrawn):
    """A right for the practitioner posted: ``give`` it, or ``withdraw`` it when ``operation=revoke``."""
    practitioner, profile = _practitioner(request), request.current_profile
    if request.POST.get("operation") == "revoke":
        action, success = withdraw, withdrawn
    else:
        action, success = give, given
    _run(
        request,
        lambda: action(profile, practitioner, actor=request.user),
        success % {"name": practitioner.display_name},
    )
    return _back(request)


@require_http_methods(["GET", "POST"])
@portal_view
@step_up_before_post("practitioner", "back", when=_widens)
def occupational(request):
    """A3: the patient authorises an occupational physician (after the step-up), or withdraws the authorisation."""
    if request.method == "GET":
        practitioner = _practitioner(request)
        return _confirm(
            request,
            title=_("Autoriser %(name)s, médecin du travail ?") % {"name": practitioner.display_name},
            consequences=_("%(name)s pourra consulter votre dossier jusqu'à ce que vous retiriez cette autorisation.")
            % {"name": practitioner.display_name},
            button=_("Autoriser ce médecin du travail"),
            fields={"practitioner": str(practitioner.pk)},
        )
    return _give_or_withdraw(
        request,
        do_authorise_occupational_physician,
        do_revoke_occupational_physician,
        _(
            "%(name)s, médecin du travail, peut consulter votre dossier jusqu'à ce que vous retiriez cette autorisation."
        ),
        _("%(name)s n'a plus accès à votre dossier."),
    )


@require_http_methods(["GET", "POST"])
@portal_view
@step_up_before_post("practitioner", "back", when=_widens)
def treating_rights(request):
    """A4: the patient lets a practitioner read masked documents as the treating doctor does, or stops it.

    Giving the rights asks for the step-up first.
    """
    if request.method == "GET":
        practitioner = _practitioner(request)
        return _confirm(
            request,
            title=_("Donner les droits de votre médecin traitant à %(name)s ?") % {"name": practitioner.display_name},
            consequences=_(
                "%(name)s verra vos documents masqués, comme votre médecin traitant. Vous pourrez retirer ces "
                "droits à tout moment."
            )
            % {"name": practitioner.display_name},
            button=_("Donner les droits de médecin traitant"),
            fields={"practitioner": str(practitioner.pk)},
        )
    return _give_or_withdraw(
        request,
        do_grant_treating_rights,
        do_revoke_treating_rights,
        _("%(name)s a maintenant les droits de votre médecin traitant : il voit vos documents masqués."),
        _("%(name)s n'a plus les droits de votre médecin traitant : il ne voit plus vos documents masqués."),
    )
