"""Read side of notices for the patient portal (N7): a profile's notices and its letters' PDFs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from .batches import letter_pdf
from .models import Letter, Notice

if TYPE_CHECKING:  # records and the directory import the notifications at run time
    from records.models import Profile, User


@dataclass(frozen=True)
class LetterDownload:
    filename: str
    content: bytes
    content_type: str = "application/pdf"


def notices_for_profile(profile: Profile) -> QuerySet[Notice]:
    """The notices sent (or to be sent) to the patient of ``profile``, newest first, in three queries.

    The treating doctor's copies of emergency notices are the doctor's, not the patient's: left out.
    ``notice.letter`` is loaded (None for e-mails) and ``notice.trail_entries.all()`` prefetched.
    """
    return (
        Notice.objects.filter(profile=profile, recipient_practitioner__isnull=True)
        .select_related("practitioner__profession", "letter")
        .prefetch_related("trail_entries")
        .order_by("-created_at", "-pk")
    )


def letter_pdf_for_patient(user: User | AnonymousUser | None, letter_id: int) -> LetterDownload:
    """A letter's decrypted PDF for its patient (or the legal representative managing the profile, L10).

    Raises ``Letter.DoesNotExist`` for a letter that is not theirs, exactly as for one that does not exist.
    """
    if user is None or not user.is_authenticated:
        raise Letter.DoesNotExist
    from records.models import Profile  # records imports the notifications at run time

    # Two statements, not one join: on Citus the letter is on the coordinator and its notice on a shard, and the
    # representative is named by id, not joined (their row may be on another shard).
    letter = Letter.objects.get(pk=letter_id)
    own = Profile.objects.filter(user_id=user.pk).values("pk")
    mine = Q(profile__user_id=user.pk) | Q(profile__legal_representative_id__in=own)
    if not Notice.objects.filter(mine, pk=letter.notice_id, recipient_practitioner__isnull=True).exists():
        raise Letter.DoesNotExist
    return LetterDownload(filename=f"carnet-{letter.reference}.pdf", content=letter_pdf(letter))
