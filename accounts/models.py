"""Sign-in records of the national providers (Pro Santé Connect, FranceConnect).

The device that stands for their strong attestation, and the FranceConnect link of a patient account
(``accounts.franceconnect``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device

if TYPE_CHECKING:
    from records.models import User


class ProviderDevice(Device):  # type: ignore[misc]  # django_otp ships no types
    """A django-otp device that stands for a strong sign-in at a national provider (no code of its own).

    A sign-in at Pro Santé Connect or FranceConnect at one of the configured strong levels of assurance
    (``*_STRONG_ACR``) logs the session in with this device (``accounts.auth.complete_provider_sign_in``): the
    session is then *verified* for every guard that asks django-otp (``patient_required``,
    ``practitioner_required``, the API's session authentication) without Carnet's own second factor. It never
    accepts a typed code.
    """

    # As Device's, without a reverse accessor on the user (nothing reads one; django-stubs could not type it).
    user: models.ForeignKey[User, User] = models.ForeignKey("records.User", on_delete=models.CASCADE, related_name="+")
    provider: models.CharField[str, str] = models.CharField(_("fournisseur"), max_length=32)

    class Meta:
        verbose_name = _("connexion par fournisseur national")
        constraints = [models.UniqueConstraint(fields=["user", "provider"], name="provider_device_per_user")]

    def verify_token(self, token: str) -> bool:
        return False


class FranceConnectLink(models.Model):
    """A patient account's FranceConnect identity: the provider's subject (``sub``), linked once, unlinkable."""

    user = models.OneToOneField(
        "records.User", on_delete=models.CASCADE, related_name="franceconnect_link", verbose_name=_("compte")
    )
    subject = models.CharField(_("identifiant FranceConnect (sub)"), max_length=255, unique=True)
    linked_at = models.DateTimeField(_("lié le"))

    class Meta:
        verbose_name = _("liaison FranceConnect")
        verbose_name_plural = _("liaisons FranceConnect")

    def __str__(self) -> str:
        return f"FranceConnect link of user {self.user_id}"
