"""Professions and practitioners (the national RPPS directory, imported by staff)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Profession(models.Model):
    """A health profession, by its RPPS code (10 médecin, 21 pharmacien, 60 infirmier…). Seeded."""

    code = models.CharField(_("code"), max_length=4, unique=True)
    label_fr = models.CharField(_("libellé (français)"), max_length=80)
    label_en = models.CharField(_("libellé (anglais)"), max_length=80)
    is_doctor = models.BooleanField(_("profession médicale (médecin)"), default=False)

    class Meta:
        verbose_name = _("profession")
        verbose_name_plural = _("professions")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.label_fr

    def label(self, language: str) -> str:
        return self.label_en if language == "en" else self.label_fr


class Practitioner(models.Model):
    """A health professional (professionnel de santé), identified by RPPS (rule I2)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("En exercice")
        SUSPENDED = "suspended", _("Suspendu")

    rpps = models.CharField(_("RPPS"), max_length=11, unique=True)
    title = models.CharField(_("civilité d'exercice"), max_length=10, blank=True)  # "Dr"
    last_name = models.CharField(_("nom"), max_length=100)
    first_name = models.CharField(_("prénom"), max_length=100)
    profession = models.ForeignKey(Profession, on_delete=models.PROTECT, related_name="practitioners")
    specialty = models.CharField(_("spécialité"), max_length=100, blank=True)
    is_samu_regulator = models.BooleanField(_("médecin régulateur SAMU (centre 15)"), default=False)  # A7
    is_occupational_physician = models.BooleanField(_("médecin du travail"), default=False)  # A3
    is_insurer_physician = models.BooleanField(_("médecin conseil / d'assurance"), default=False)  # A3
    status = models.CharField(_("statut"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    practice_address = models.CharField(_("adresse d'exercice"), max_length=200, blank=True)
    practice_postal_code = models.CharField(_("code postal"), max_length=10, blank=True)
    practice_city = models.CharField(_("commune"), max_length=80, blank=True)
    email = models.EmailField(_("courriel"), blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="practitioner",
    )

    class Meta:
        verbose_name = _("professionnel de santé")
        verbose_name_plural = _("professionnels de santé")
        indexes = [models.Index(fields=["last_name", "first_name"], name="practitioner_name_idx")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        prefix = f"{self.title} " if self.title else ""
        return f"{prefix}{self.first_name} {self.last_name}"

    @property
    def national_id(self) -> str:
        return f"8{self.rpps}"  # I2

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
