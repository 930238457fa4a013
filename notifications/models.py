"""The notice outbox (N5): one row per thing to tell, written in the transaction of the action it reports."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Notice(models.Model):
    class Kind(models.TextChoices):
        CONSULTATION = "consultation", _("Consultation du dossier")  # N1
        EMERGENCY = "emergency", _("Accès en urgence")  # N3
        PRE_OPENING = "pre_opening", _("Notice de pré-ouverture")  # L1
        OPPOSITION = "opposition", _("Confirmation d'opposition")  # L2
        HOLD_REMINDER = "hold_reminder", _("Document en attente de consultation")  # A8
        SUSPENSION = "suspension", _("Suspension")  # L7
        CLOSURE = "closure", _("Clôture")  # L5
        REOPENING = "reopening", _("Réouverture")  # L6
        DELETION_DONE = "deletion_done", _("Suppression effectuée")  # L5
        NEW_DOCUMENT = "new_document", _("Nouveau document")  # N7

    class Channel(models.TextChoices):
        EMAIL = "email", _("Courriel")
        LETTER = "letter", _("Courrier postal")
        NONE = "none", _("Aucun")

    class Status(models.TextChoices):
        PENDING = "pending", _("En attente")
        SENDING = "sending", _("En cours d'envoi")
        SENT = "sent", _("Envoyé")
        FAILED = "failed", _("Échec")
        UNDELIVERABLE = "undeliverable", _("Aucune adresse utilisable")

    kind = models.CharField(_("type"), max_length=20, choices=Kind.choices)
    profile = models.ForeignKey("records.Profile", on_delete=models.CASCADE, related_name="notices")
    # Set when the recipient is a practitioner (the treating doctor told of an emergency access, N3).
    recipient_practitioner = models.ForeignKey(
        "practitioners.Practitioner", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The practitioner whose access is reported (consultation, emergency).
    practitioner = models.ForeignKey(
        "practitioners.Practitioner", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(_("canal"), max_length=8, choices=Channel.choices)
    status = models.CharField(_("statut"), max_length=16, choices=Status.choices, default=Status.PENDING)
    dedupe_key = models.CharField(max_length=200, unique=True)
    trail_entries = models.ManyToManyField("access_control.TrailEntry", related_name="+", blank=True)
    attempts = models.PositiveIntegerField(_("tentatives"), default=0)
    last_error = models.TextField(_("dernière erreur"), blank=True)
    created_at = models.DateTimeField(_("créé le"))
    updated_at = models.DateTimeField(_("mis à jour le"), auto_now=True)
    deliver_after = models.DateTimeField(_("à envoyer après"))
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("envoyé le"), null=True, blank=True)
    # Secret payload (the provisional code of a pre-opening notice), encrypted with the master key and
    # erased once delivered.
    sealed_payload = models.BinaryField(null=True, blank=True)

    class Meta:
        verbose_name = _("avis")
        verbose_name_plural = _("avis")
        indexes = [
            models.Index(fields=["status", "deliver_after"], name="notice_status_due_idx"),
            models.Index(fields=["profile", "-created_at"], name="notice_profile_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"
