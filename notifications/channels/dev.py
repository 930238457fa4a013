"""Development channel: renders the message (so templates are exercised) and only records it.

Selected for every notice by ``CARNET_NOTICE_CHANNEL_OVERRIDE=dev``. Nothing leaves the process: the message
is kept in ``outbox`` (tests, the shell) and the log line carries the notice id and kind only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.template.loader import render_to_string
from django.utils import translation

from ..content import build_message
from .base import Channel

if TYPE_CHECKING:  # records and the directory import the notifications at run time
    from ..models import Notice

logger = logging.getLogger(__name__)

outbox: list[dict[str, Any]] = []
_KEEP = 100


class DevChannel(Channel):
    name = "dev"

    def send(self, notice: Notice) -> None:
        message = build_message(notice)
        with translation.override(message.language):
            text = render_to_string("notifications/email/message.txt", {"message": message})
        outbox.append({"notice_id": notice.pk, "kind": notice.kind, "subject": message.subject, "text": text})
        del outbox[:-_KEEP]
        logger.info("Dev channel recorded notice %s (%s).", notice.pk, notice.kind)
