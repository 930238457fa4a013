"""Who acts, and the two predicates every app's actions share (docs/conventions.md, One home per rule).

An action's ``actor`` is an ``Actor`` — an account (patient, staff or a practitioner's login) or a practitioner of
the directory — or ``None`` for the system where the action allows it (the roster import, the scheduler, the
anonymous holder of a provisional code).

Staff means an active account of the staff kind (``User.Kind.STAFF``). Superuser status alone grants nothing in
an action: the admin site keeps its own permissions (``is_staff``, ``is_superuser``, groups) for its pages, but
what a staff member may change is decided here, the same way in every app (docs/adr/0006-who-counts-as-staff.md).
"""

from typing import TypeAlias, TypeGuard

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from practitioners.models import Practitioner

from .models import Profile, User

Actor: TypeAlias = User | Practitioner


def is_staff(actor: Actor | None) -> TypeGuard[User]:
    """An active account of the staff kind (an agent of the health insurance), whatever its admin flags."""
    return isinstance(actor, User) and actor.kind == User.Kind.STAFF and actor.is_active


def speaks_for(profile: Profile, actor: Actor | None) -> bool:
    """The holder, or the legal representative managing the profile from their own account (L10).

    Only an active patient account speaks for a profile; reads ``profile.legal_representative`` (select it with
    the profile to spare a query).
    """
    if not isinstance(actor, User) or actor.kind != User.Kind.PATIENT or not actor.is_active:
        return False
    if profile.user_id is not None and profile.user_id == actor.pk:
        return True
    representative = profile.legal_representative
    return representative is not None and representative.user_id == actor.pk


def signed_in_account(request: HttpRequest) -> User:
    """The account behind a request only signed-in accounts reach (the admin site's pages and actions).

    Refused (403) for an anonymous request, which those pages' own guards turn away before.
    """
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user
