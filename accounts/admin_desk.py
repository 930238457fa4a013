"""The staff sign-in desk in the admin (``/admin/connexion/``): an account's lock-out and second factor.

An agent looks an account up (username, e-mail address or RPPS), sees whether its sign-in is locked out and
until when, and may lift the lock-out (``accounts.recovery.LIFT_PERMISSION``); a supervisor may reset a
practitioner's lost authenticator app (``RESET_PERMISSION``). Both are actions of ``accounts.recovery``,
traced (T1). Addresses are never listed: their counters are HMACs.
"""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.recovery import LIFT_PERMISSION, RESET_PERMISSION, do_lift_lockout, do_reset_second_factor
from plumbing.throttling import account_name, account_state
from records.actors import signed_in_account
from records.models import User

MAX_RESULTS = 10


def _accounts(query: str) -> list[User]:
    query = query.strip()
    if not query:
        return []
    condition = Q(username=query) | Q(email__iexact=query)
    if query.isdigit():
        condition |= Q(practitioner__rpps=query)
    return list(User.objects.filter(condition).select_related("practitioner", "profile").order_by("pk")[:MAX_RESULTS])


def _row(user: User) -> dict[str, Any]:
    failures, seconds = account_state(account_name(user_id=user.pk, door="", identifier=""))
    return {
        "user": user,
        "failures": failures,
        "locked_minutes": (seconds + 59) // 60 if failures else 0,
        "has_app": TOTPDevice.objects.filter(user=user, confirmed=True).exists(),
        "is_practitioner": user.kind == User.Kind.PRACTITIONER,
    }


@require_http_methods(["GET", "POST"])
def signin_desk(request: HttpRequest) -> HttpResponse:
    staff = signed_in_account(request)  # the admin site lets only signed-in staff in
    may_lift, may_reset = staff.has_perm(LIFT_PERMISSION), staff.has_perm(RESET_PERMISSION)
    if not (may_lift or may_reset):
        raise PermissionDenied
    query = request.GET.get("q", "")
    if request.method == "POST":
        user = (
            User.objects.filter(pk=request.POST.get("user") or 0).first()
            if (request.POST.get("user") or "").isdigit()
            else None
        )
        if user is None:
            raise PermissionDenied
        if request.POST.get("action") == "lift":
            do_lift_lockout(user, actor=staff)
            messages.success(request, _("Le blocage de connexion de ce compte est levé."))
        elif request.POST.get("action") == "reset":
            do_reset_second_factor(user, actor=staff)
            messages.success(
                request,
                _(
                    "Le second facteur est réinitialisé : le professionnel en configurera un nouveau à sa prochaine connexion."
                ),
            )
        url = reverse("admin:signin_desk")
        return redirect(f"{url}?{urlencode({'q': request.POST.get('q', '')})}")
    context = {
        **admin.site.each_context(request),
        "title": _("Connexion : blocages et second facteur"),
        "query": query,
        "rows": [_row(user) for user in _accounts(query)],
        "searched": bool(query.strip()),
        "may_lift": may_lift,
        "may_reset": may_reset,
    }
    return TemplateResponse(request, "admin/signin_desk.html", context)
