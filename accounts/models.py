"""Sign-in records: the national providers (Pro Santé Connect, FranceConnect) and connected apps (SMART on FHIR).

The device that stands for a provider's strong attestation and the FranceConnect link of a patient account
(``accounts.franceconnect``). For connected apps, the OAuth 2 clients, codes and tokens are django-oauth-toolkit's
tables (``oauth2_provider_*``); these add what SMART on FHIR needs on top: the publisher and description the
consent page shows (``AppListing``), the profile a patient opened to an app (``AppConnection``), and which codes
and tokens belong to which connection (``AppConnectionToken``), so that revoking a connection revokes them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
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


class AppListing(models.Model):
    """What the consent page says about a registered app besides its name (set by staff in the admin)."""

    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.CASCADE, related_name="carnet_listing"
    )
    publisher = models.CharField(_("éditeur"), max_length=120, blank=True)
    description = models.TextField(_("description"), max_length=600, blank=True)
    website = models.URLField(_("site web"), blank=True)

    class Meta:
        verbose_name = _("fiche d'application connectée")
        verbose_name_plural = _("fiches d'applications connectées")

    def __str__(self) -> str:
        return self.publisher or str(self.application_id)


class AppConnection(models.Model):
    """A patient (``user``) let an app read one profile they speak for (L10), with these scopes, until revoked."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    profile = models.ForeignKey("records.Profile", on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey("oauth2_provider.Application", on_delete=models.CASCADE, related_name="+")
    scope = models.TextField(_("portée"))
    created_at = models.DateTimeField(_("autorisée le"))
    last_used_at = models.DateTimeField(_("dernière utilisation"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("retirée le"), null=True, blank=True)

    class Meta:
        verbose_name = _("application connectée")
        verbose_name_plural = _("applications connectées")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "profile", "application"],
                condition=models.Q(revoked_at__isnull=True),
                name="app_connection_one_live",
            )
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="app_connection_user_idx")]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


class AppConnectionToken(models.Model):
    """One authorisation code or access token issued under a connection (exactly one of the two is set)."""

    connection = models.ForeignKey(AppConnection, on_delete=models.CASCADE, related_name="tokens")
    grant = models.OneToOneField(
        "oauth2_provider.Grant", on_delete=models.CASCADE, null=True, blank=True, related_name="carnet_link"
    )
    access_token = models.OneToOneField(
        "oauth2_provider.AccessToken",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="carnet_link",
    )

    class Meta:
        verbose_name = _("jeton d'application connectée")
        verbose_name_plural = _("jetons d'applications connectées")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(grant__isnull=True) ^ models.Q(access_token__isnull=True),
                name="app_connection_token_one_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"
