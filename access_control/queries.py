"""Who may read which part of the trail (T3), as paginable querysets with a constant number of queries.

The actor's name and profession are snapshots stored on each entry (T1), so no list here joins another table
per row. Reading the trail is not itself one of the traced actions of T1; views that show it may trace it.
"""

from datetime import datetime
from typing import Any

from django.db.models import Case, Count, Exists, F, FloatField, OuterRef, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Greatest

from practitioners.models import Practitioner
from records.models import Profile

from .models import Review, TrailEntry
from .rules import Action


def trail_for_patient(profile: Profile, *, as_legal_representative: bool = False) -> QuerySet[TrailEntry]:
    """The profile's whole trail, newest first (T3): who (name, profession), when, what, mode and outcome.

    The holder sees every entry, denied attempts and emergency accesses included. A legal representative
    managing a minor's profile does not see entries about documents under the minor's secret (A9).
    """
    entries = TrailEntry.objects.filter(profile=profile).order_by("-seq")
    if as_legal_representative:
        from records.models import Document

        secret = Document.objects.filter(profile=profile, hidden_from_representatives=True).values("pk")
        entries = entries.exclude(document_id__in=secret)
    return entries


def trail_for_treating_doctor(practitioner: Practitioner | None, profile: Profile) -> QuerySet[TrailEntry]:
    """The profile's trail for its treating doctor (A6, T3); nothing for any other practitioner."""
    if practitioner is None or profile.treating_doctor_id != practitioner.pk:
        return TrailEntry.objects.none()
    return trail_for_patient(profile)


def own_actions(practitioner: Practitioner) -> QuerySet[TrailEntry, dict[str, Any]]:
    """The practitioner's own traced actions, newest first (T3), as dicts.

    A refused attempt does not say which profile or document it was about, nor why: a blocked practitioner
    must not learn from their own history that the profile exists (A5, no oracle).
    """
    allowed = TrailEntry.Outcome.ALLOWED
    return (
        TrailEntry.objects.filter(actor_practitioner=practitioner)
        .order_by("-at", "-id")
        .annotate(
            shown_profile_id=Case(When(outcome=allowed, then=F("profile_id")), default=None),
            shown_document_id=Case(When(outcome=allowed, then=F("document_id")), default=None),
        )
        .values("id", "at", "action", "mode", "outcome", "shown_profile_id", "shown_document_id")
    )


def curiosity_report(
    since: datetime, until: datetime, *, min_openings: int = 20, min_ratio: float = 10.0
) -> QuerySet[TrailEntry, dict[str, Any]]:
    """Practitioners to look at for the period [since, until) (issue 7, A13): one aggregate query, as dicts.

    A practitioner is listed when their allowed record openings are unusually many relative to their deposits
    (``openings >= min_openings`` and ``openings / max(deposits, 1) >= min_ratio``), or when they opened a
    high-profile profile (an opening that raised an A13 review). Rows hold the practitioner's name, profession
    and RPPS and the counts only: no patient is named. Sorted by ratio, then openings, highest first.
    """
    allowed = TrailEntry.Outcome.ALLOWED
    opening = Q(action=Action.OPEN_RECORD, outcome=allowed)
    high_profile = Exists(Review.objects.filter(trail_entry_id=OuterRef("pk"), kind=Review.Kind.HIGH_PROFILE))
    return (
        TrailEntry.objects.filter(
            at__gte=since,
            at__lt=until,
            actor_practitioner__isnull=False,
            action__in=[Action.OPEN_RECORD, Action.DEPOSIT],
        )
        .order_by()
        .values(
            "actor_practitioner_id",
            "actor_practitioner__rpps",
            "actor_practitioner__title",
            "actor_practitioner__first_name",
            "actor_practitioner__last_name",
            "actor_practitioner__profession__label_fr",
        )
        .annotate(
            openings=Count("pk", filter=opening),
            deposits=Count("pk", filter=Q(action=Action.DEPOSIT, outcome=allowed)),
            high_profile_openings=Count("pk", filter=opening & Q(high_profile)),
        )
        .annotate(ratio=Cast("openings", FloatField()) / Cast(Greatest("deposits", Value(1)), FloatField()))
        .annotate(
            unusual=Case(
                When(Q(openings__gte=min_openings, ratio__gte=min_ratio), then=Value(True)),
                default=Value(False),
            )
        )
        .filter(Q(unusual=True) | Q(high_profile_openings__gt=0))
        .order_by("-ratio", "-openings", "actor_practitioner__rpps")
    )
