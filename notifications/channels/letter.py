"""Postal letter channel (N2, N4): render the notice as an A4 PDF and file it in the day's print batch.

"Sent" for a letter means filed, encrypted, in an open print batch; the mail house prints and posts the
batch once it is closed. Filing is idempotent: a notice has at most one letter (a re-run after a worker died
between filing and marking the notice sent finds the letter and stops there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..address import address_lines
from ..batches import file_letter
from ..content import build_message
from ..models import Letter
from ..rendering import render_letter
from .base import Channel

if TYPE_CHECKING:  # records and the directory import the notifications at run time
    from ..models import Notice


class LetterChannel(Channel):
    name = "letter"

    def send(self, notice: Notice) -> None:
        if Letter.objects.filter(notice_id=notice.pk).exists():
            return
        profile = notice.profile
        lines = address_lines(profile)  # UndeliverableError without a usable address
        rendered = render_letter(build_message(notice), lines)
        file_letter(
            notice,
            rendered.pdf,
            page_count=rendered.page_count,
            postal_code=profile.postal_code,
            country=(profile.country or "FR").upper(),
        )
