"""The notice outbox (N5): one row per thing to tell, written in the transaction of the action it reports."""

from django.conf import settings
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
    # Last time the notice's id was handed to the broker; the sweep re-queues only after a grace period.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("envoyé le"), null=True, blank=True)
    # At most once (N5, notifications.delivery): set, and committed, just before the hand-off to the transport;
    # cleared when the transport refused. A ``sending`` row whose worker died with this set may have reached
    # the relay ("sent but not marked"): it is sent again with the same ``message_id``.
    send_started_at = models.DateTimeField(_("envoi commencé le"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=200, blank=True)
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


class PrintBatch(models.Model):
    """The letters of one day, for the mail house (N4): one merged PDF and a CSV manifest once closed.

    At most one batch is open per day; a letter made after its day's batch closed goes to the next day's.
    Its two files (``BatchFile``) are stored encrypted in the document store, like documents (rule D).
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Ouvert")
        CLOSED = "closed", _("Clôturé")

    day = models.DateField(_("jour"), unique=True)
    status = models.CharField(_("statut"), max_length=8, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    closed_at = models.DateTimeField(_("clôturé le"), null=True, blank=True)
    letter_count = models.PositiveIntegerField(_("lettres"), default=0)
    page_count = models.PositiveIntegerField(_("pages"), default=0)
    # N4: when a staff member handed the closed batch's files to the mail house (``do_mark_batch_handed``).
    handed_at = models.DateTimeField(_("remis au routeur le"), null=True, blank=True)
    handed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("remis par"),
    )

    class Meta:
        verbose_name = _("lot d'impression")
        verbose_name_plural = _("lots d'impression")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} ({self.get_status_display()})"


class Letter(models.Model):
    """The postal letter that delivered a notice (N4): its PDF, encrypted in the document store."""

    notice = models.OneToOneField(Notice, on_delete=models.CASCADE, related_name="letter")
    batch = models.ForeignKey(PrintBatch, on_delete=models.PROTECT, related_name="letters")
    reference = models.CharField(_("référence"), max_length=32, unique=True)
    page_count = models.PositiveSmallIntegerField(_("pages"))
    postal_code = models.CharField(_("code postal"), max_length=10)
    country = models.CharField(_("pays"), max_length=2)
    created_at = models.DateTimeField(_("créé le"))
    storage_key = models.CharField(max_length=200, unique=True)
    wrapped_key = models.BinaryField()
    master_key_id = models.CharField(max_length=32)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("lettre")
        verbose_name_plural = _("lettres")
        indexes = [models.Index(fields=["batch", "id"], name="letter_batch_idx")]

    def __str__(self) -> str:
        return self.reference


class BatchFile(models.Model):
    """A closed batch's merged PDF or CSV manifest, encrypted in the document store (rule D, N4)."""

    class Part(models.TextChoices):
        PDF = "pdf", _("PDF fusionné")
        MANIFEST = "manifest", _("Manifeste CSV")

    batch = models.ForeignKey(PrintBatch, on_delete=models.PROTECT, related_name="files")
    part = models.CharField(_("fichier"), max_length=8, choices=Part.choices)
    storage_key = models.CharField(max_length=200, unique=True)
    wrapped_key = models.BinaryField()
    master_key_id = models.CharField(max_length=32)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("fichier de lot")
        verbose_name_plural = _("fichiers de lot")
        constraints = [models.UniqueConstraint(fields=["batch", "part"], name="batch_file_unique_part")]

    def __str__(self) -> str:
        return f"{self.batch} {self.part}"


class ReadMark(models.Model):
    """An item of the patient's notification centre that a user opened (issue 18, item 4).

    Kept apart from the notices and the trail, which never change once written (T1, N5): an item is unread while
    no mark names it. One mark per user, so that a legal representative and, later, the minor read on their own.
    """

    class Kind(models.TextChoices):
        NOTICE = "notice", _("Avis")
        DOCUMENT = "document", _("Nouveau document")
        ACCESS = "access", _("Accès à votre dossier")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    profile = models.ForeignKey("records.Profile", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices)
    item_id = models.BigIntegerField()
    read_at = models.DateTimeField(_("lu le"))

    class Meta:
        verbose_name = _("élément lu")
        verbose_name_plural = _("éléments lus")
        constraints = [
            models.UniqueConstraint(fields=["user", "profile", "kind", "item_id"], name="readmark_once"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.item_id}"
