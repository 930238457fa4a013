"""The one transport interface every channel implements, and the errors a channel may raise.

A channel's ``send(notice)`` either returns (the notice reached its transport: handed to the SMTP relay,
filed in the day's print batch, recorded) or raises one of the errors below. Their ``reason`` is stored in
``Notice.last_error`` and shown in the admin, so it must never carry patient data (no address, no name):
an SMTP code, an exception class name, a short fixed sentence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # records and the directory import the notifications at run time
    from ..models import Notice


class DeliveryError(Exception):
    """Base class. ``reason`` is a short text without patient data."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason[:200]


class TransientDeliveryError(DeliveryError):
    """Try again later: the relay is unreachable, answered 4xx, timed out (N5, retried with backoff)."""


class PermanentDeliveryError(DeliveryError):
    """Trying again cannot help: the relay answered 5xx. The notice becomes ``failed``."""


class UndeliverableError(PermanentDeliveryError):
    """The recipient has no usable address for this channel (N2): the notice becomes ``undeliverable``."""


class Channel:
    """A transport for notices. Subclasses set ``name`` and implement ``send``."""

    name = ""

    def message_id(self, notice: Notice) -> str:
        """The notice's stable message identifier on this transport ("" when it has none)."""
        return ""

    def send(self, notice: Notice) -> None:
        raise NotImplementedError
