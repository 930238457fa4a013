"""Connected apps in the patient portal (issue 17): the consent page, and the list with its revoke buttons.

The consent page is Carnet's OAuth 2 authorisation endpoint (``accounts.app_authorise``): the signed-in patient
(second factor passed) reads the app's name, publisher and description and, in plain words, what each scope will
show; picks the profile the app gets among those they speak for (their own, or a minor's they represent, L10);
and agrees or refuses. Agreeing connects the app (``accounts.app_server.do_connect_app``, traced) and sends the
browser back to the app with a code. The page's CSP allows that one redirect target in ``form-action``; no
script runs on it.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.app_authorise import AuthorisationError, answer, read_request
from accounts.app_server import connections_of, do_connect_app, do_revoke_app_connection
from accounts.auth import client_address
from accounts.models import AppConnection
from accounts.smart import scope_labels
from patients.portal import managed_profiles, portal_view

PROFILE_FIELD = "profile"
DECISION_FIELD = "decision"


def _refused(request, description: str):
    return render(request, "patients/apps/refused.html", {"description": description}, status=400)


@require_http_methods(["GET", "POST"])
@portal_view
def authorise(request):
    """The consent page (GET) and the patient's decision (POST, to the same URL with the same query string)."""
    try:
        auth = read_request(request)
    except AuthorisationError as error:
        return error.response() or _refused(request, error.description)
    profiles = managed_profiles(request)
    chosen = None
    if request.method == "POST":
        if request.POST.get(DECISION_FIELD) != "allow":
            return answer(request, auth, None)
        wanted = request.POST.get(PROFILE_FIELD, "")
        chosen = next((p for p in profiles if str(p.pk) == wanted), None)
        if chosen is None:
            messages.error(request, _("Choisissez l'espace santé que l'application pourra lire."))
        else:
            try:
                connection = do_connect_app(
                    auth.application,
                    chosen,
                    scopes=auth.scopes,
                    actor=request.user,
                    client_address=client_address(request),
                )
            except ValidationError as exc:
                messages.error(request, exc.messages[0])
            else:
                return answer(request, auth, connection)
    context = {
        "auth": auth,
        "profiles": profiles,
        "chosen": chosen.pk if chosen is not None else request.current_profile.pk,
        "action": request.get_full_path(),
    }
    response = render(request, "patients/apps/consent.html", context, status=400 if request.method == "POST" else 200)
    # django-csp: the form's redirect goes to the app, so the consent form may submit there (and only there).
    response._csp_update = {"form-action": [auth.redirect_origin]}  # type: ignore[attr-defined]
    return response


@require_GET
@portal_view
def connected_apps(request):
    """The account's live connections to the profiles it manages: app, profile, scopes, since, last use."""
    profiles = {p.pk: p for p in managed_profiles(request)}
    rows = [
        {
            "connection": connection,
            "profile": profiles.get(connection.profile_id),
            "scopes": scope_labels(connection.scope),
            "listing": getattr(connection.application, "carnet_listing", None),
        }
        for connection in connections_of(request.user, list(profiles))
    ]
    return render(request, "patients/apps/list.html", {"rows": rows})


@require_POST
@portal_view
def revoke(request, connection_id: int):
    """Withdraw one app's access (every token at once, traced); another account's connection is a 404."""
    connection = get_object_or_404(
        AppConnection.objects.select_related("application"), pk=connection_id, user=request.user
    )
    do_revoke_app_connection(connection, actor=request.user, client_address=client_address(request))
    messages.success(
        request, _("L'application « %(name)s » n'a plus accès au dossier.") % {"name": connection.application.name}
    )
    return redirect("patients:connected_apps")
