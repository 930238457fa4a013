"""Connected apps (issue 17): what a registered app says about itself, and each patient's connection to one.

The OAuth 2 clients themselves, their codes and tokens are django-oauth-toolkit's tables (``oauth2_provider_*``);
these add what SMART on FHIR needs on top: the publisher and description the consent page shows
(``AppListing``), the profile a patient opened to an app (``AppConnection``), and which codes and tokens belong
to which connection (``AppConnectionToken``), so that revoking a connection revokes them all.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


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
