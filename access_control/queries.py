"""Who may read which part of the trail (T3), as paginable querysets with a constant number of queries.

The actor's name and profession are snapshots stored on each entry (T1), so no list here joins another table
per row. Reading the trail is not itself one of the traced actions of T1; views that show it may trace it.
"""

from django.db.models import Case, F, QuerySet, When

from .models import TrailEntry


def trail_for_patient(profile, *, as_legal_representative: bool = False) -> QuerySet[TrailEntry]:
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


def trail_for_treating_doctor(practitioner, profile) -> QuerySet[TrailEntry]:
    """The profile's trail for its treating doctor (A6, T3); nothing for any other practitioner."""
    if practitioner is None or profile.treating_doctor_id != practitioner.pk:
        return TrailEntry.objects.none()
    return trail_for_patient(profile)


def own_actions(practitioner) -> QuerySet:
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
