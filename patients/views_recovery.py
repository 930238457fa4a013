"""Patient account recovery (``accounts.recovery``): a forgotten password, and a lost second factor by post."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import recovery_pages
from accounts.auth import Door, SignInRefused
from accounts.forms import PostalRecoveryForm, RecoveryLetterForm, render_sign_in
from accounts.recovery import RecoveryRefused, do_recover_with_provisional_code, do_request_recovery_letter

TEMPLATE = "patients/recovery.html"
DOOR = recovery_pages.RecoveryDoor(
    door=Door.PATIENT, namespace="patients", template=TEMPLATE, identifier_label=_("Adresse électronique")
)
LETTER_MESSAGE = _(
    "Si ces informations correspondent à un espace santé activé, un code provisoire vous sera envoyé par courrier "
    "à votre adresse postale dans les prochains jours."
)
RECOVERED_MESSAGE = _(
    "Votre mot de passe a été changé et votre application d'authentification désactivée. Connectez-vous : "
    "un code vous sera envoyé par courriel."
)

recover = recovery_pages.request_page(DOOR)
recover_code = recovery_pages.code_page(DOOR)
recover_second_factor = recovery_pages.second_factor_page(DOOR)
recover_password = recovery_pages.password_page(DOOR)


@never_cache
@require_http_methods(["GET", "POST"])
def recover_letter(request):
    """Lost second factor: ask for a provisional code by post (the same answer whether a profile matched)."""
    form = RecoveryLetterForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            do_request_recovery_letter(
                request, nir=form.cleaned_data["nir"], birth_date=form.cleaned_data["birth_date"]
            )
        except SignInRefused as exc:
            form.add_error(None, exc)
        else:
            messages.info(request, LETTER_MESSAGE)
            return redirect("patients:recover_with_letter")
    return render_sign_in(request, TEMPLATE, {"form": form, "step": "letter"}, form)


@never_cache
@require_http_methods(["GET", "POST"])
def recover_with_letter(request):
    """The code received by post, the identity and a new password: the lost second factor is removed."""
    form = PostalRecoveryForm(data=request.POST if request.method == "POST" else None)
    if form.is_valid():
        data = form.cleaned_data
        try:
            do_recover_with_provisional_code(
                request,
                nir=data["nir"],
                birth_date=data["birth_date"],
                provisional_code=data["provisional_code"],
                password=data["password1"],
            )
        except (SignInRefused, RecoveryRefused) as exc:
            form.add_error(None, exc)
        except ValidationError as exc:  # the new password, refused by Django's validators
            form.add_error("password1", exc)
        else:
            messages.success(request, RECOVERED_MESSAGE)
            return redirect("patients:login")
    return render_sign_in(request, TEMPLATE, {"form": form, "step": "postal"}, form)
