"""Notice channels as plug-ins: one module per transport, one interface in ``base``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import Channel

if TYPE_CHECKING:  # records and the directory import the notifications at run time
    from ..models import Notice


def get_channel(name: str) -> Channel:
    from .dev import DevChannel
    from .email import EmailChannel
    from .letter import LetterChannel

    channels = {"email": EmailChannel, "letter": LetterChannel, "dev": DevChannel}
    try:
        return channels[name]()
    except KeyError:
        raise ImproperlyConfigured(f"Unknown notice channel {name!r} (known: {', '.join(channels)}).") from None


def channel_for(notice: Notice) -> Channel:
    """The notice's own channel (N2), unless CARNET_NOTICE_CHANNEL_OVERRIDE forces one (``dev``)."""
    return get_channel(settings.CARNET_NOTICE_CHANNEL_OVERRIDE or notice.channel)
