"""Read markers of the patient's notification centre (issue 18, item 4).

The centre lists notices, new documents and professionals' accesses; the door (``patients.views_notifications``)
builds those lists through its own door functions. This module only keeps which of them a user has opened, in
``ReadMark`` rows beside the notices and the trail, which stay as written (T1, N5). Marking read is not a
traced action: it changes nothing anyone else sees.
"""

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from records.models import Profile, User

from .models import ReadMark


def read_item_ids(user: User, profile: Profile, kind: str) -> QuerySet[ReadMark, Any]:
    """The ids of the items of ``kind`` that ``user`` opened in ``profile``'s centre, as a subquery."""
    return ReadMark.objects.filter(user_id=user.pk, profile_id=profile.pk, kind=kind).values("item_id")


def read_marks(user: User, profile: Profile) -> set[tuple[str, int]]:
    """Every ``(kind, item_id)`` that ``user`` opened in ``profile``'s centre (one query)."""
    return set(ReadMark.objects.filter(user_id=user.pk, profile_id=profile.pk).values_list("kind", "item_id"))


def mark_read(user: User, profile: Profile, items: Iterable[tuple[str, int]]) -> None:
    """Mark the items read for ``user`` (idempotent: a second opening changes nothing)."""
    now = timezone.now()
    ReadMark.objects.bulk_create(
        [
            ReadMark(user_id=user.pk, profile_id=profile.pk, kind=kind, item_id=item_id, read_at=now)
            for kind, item_id in items
        ],
        ignore_conflicts=True,
    )
