"""Rule tables (matrix, blocks, category masks, authorisations), the trail and the review queue."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AccessMode(models.TextChoices):
    """JDV_J38 ModeAcces."""

    NORMAL = "normal", _("Normal")
    BRIS_DE_GLACE = "bris_de_glace", _("Bris de glace")
    CENTRE_15 = "centre_15", _("Centre 15 (SAMU)")


class AccessRule(models.Model):
    """One cell of the profession x document-type matrix (A2). A pair absent from the table is denied."""

    profession = models.ForeignKey("practitioners.Profession", on_delete=models.CASCADE, related_name="+")
    document_type = models.ForeignKey("records.DocumentType", on_delete=models.CASCADE, related_name="+")
    may_read = models.BooleanField(_("peut lire"), default=True)

    class Meta:
        verbose_name = _("règle de la matrice d'accès")
        verbose_name_plural = _("matrice d'accès")
        constraints = [models.UniqueConstraint(fields=["profession", "document_type"], name="access_rule_unique_pair")]

    def __str__(self) -> str:
        may_read = _("oui") if self.may_read else _("non")
        return f"{self.profession.code} × {self.document_type.code}: {may_read}"


class Block(models.Model):
    """A patient denies one named practitioner (A5)."""

    profile = models.ForeignKey("records.Profile", on_delete=models.CASCADE, related_name="blocks")
    practitioner = models.ForeignKey("practitioners.Practitioner", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("blocage")
        verbose_name_plural = _("blocages")
        constraints = [
            models.UniqueConstraint(fields=["profile", "practitioner"], name="block_unique_pair"),
        ]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"


class DocumentCategory(models.Model):
    """A named set of document types a patient can mask as a whole, present and future (A12)."""

    code = models.SlugField(_("code"), unique=True)
    label_fr = models.CharField(_("libellé (français)"), max_length=120)
    label_en = models.CharField(_("libellé (anglais)"), max_length=120)
    document_types = models.ManyToManyField("records.DocumentType", related_name="categories")

    class Meta:
        verbose_name = _("catégorie de documents")
        verbose_name_plural = _("catégories de documents")

    def __str__(self) -> str:
        return self.label_fr


class CategoryMask(models.Model):
    profile = models.ForeignKey("records.Profile", on_delete=models.CASCADE, related_name="category_masks")
    category = models.ForeignKey(DocumentCategory, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("masquage de catégorie")
        verbose_name_plural = _("masquages de catégorie")
        constraints = [models.UniqueConstraint(fields=["profile", "category"], name="category_mask_unique")]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"


class PractitionerGrant(models.Model):
    """A right the patient gave one named practitioner on their profile, until they withdraw it."""

    profile = models.ForeignKey("records.Profile", on_delete=models.CASCADE, related_name="+")
    practitioner = models.ForeignKey("practitioners.Practitioner", on_delete=models.PROTECT, related_name="+")
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"


class OccupationalAuthorisation(PractitionerGrant):
    """A patient's express, revocable authorisation of an occupational physician (A3)."""

    class Meta:
        verbose_name = _("autorisation du médecin du travail")
        verbose_name_plural = _("autorisations des médecins du travail")
        constraints = [
            models.UniqueConstraint(fields=["profile", "practitioner"], name="occupational_authorisation_unique")
        ]


class TreatingRightsGrant(PractitionerGrant):
    """A practitioner the patient granted the treating doctor's reading rights: masked documents too (A4).

    The grant lifts masks (A4, A12) and nothing else: the profession's matrix (A2), blocks and every record-level
    rule still apply, and the trail (A6, T3) and the emergency notices (N3) stay the declared treating doctor's.
    """

    class Meta:
        verbose_name = _("droits de médecin traitant accordés")
        verbose_name_plural = _("droits de médecin traitant accordés")
        constraints = [models.UniqueConstraint(fields=["profile", "practitioner"], name="treating_rights_unique")]


class TrailEntry(models.Model):
    """One traced action (T1). Append-only in the database and hash-chained per profile (T2).

    References are kept without database constraints so that the row never changes after insert (no
    ON DELETE actions); the retention purge (T4) removes a profile's chain with the profile.
    """

    class ActorKind(models.TextChoices):
        PRACTITIONER = "practitioner", _("Professionnel de santé")
        PATIENT = "patient", _("Patient")
        STAFF = "staff", _("Agent")
        SYSTEM = "system", _("Système")

    class Outcome(models.TextChoices):
        ALLOWED = "allowed", _("Autorisé")
        DENIED = "denied", _("Refusé")

    at = models.DateTimeField(_("date"), db_index=True)
    # The profile's chain, or the national chain (``trail.NATIONAL_CHAIN``, 0) for entries about no profile:
    # never NULL, so that Citus can shard every entry (docs/adr/0008-national-trail-chain.md).
    profile = models.ForeignKey(
        "records.Profile",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="trail_entries",
    )
    seq = models.PositiveBigIntegerField(_("rang dans la chaîne"))
    actor_kind = models.CharField(_("acteur"), max_length=16, choices=ActorKind.choices)
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_practitioner = models.ForeignKey(
        "practitioners.Practitioner",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_name = models.CharField(_("nom de l'acteur"), max_length=200)
    actor_profession = models.CharField(_("profession"), max_length=80, blank=True)
    actor_rpps = models.CharField(_("RPPS"), max_length=11, blank=True)
    document_id = models.BigIntegerField(_("document"), null=True, blank=True)
    action = models.CharField(_("action"), max_length=40)
    detail = models.CharField(_("détail"), max_length=200, blank=True)
    mode = models.CharField(_("mode d'accès"), max_length=16, choices=AccessMode.choices, default=AccessMode.NORMAL)
    outcome = models.CharField(_("résultat"), max_length=8, choices=Outcome.choices, default=Outcome.ALLOWED)
    reason = models.CharField(_("motif (trace uniquement)"), max_length=64, blank=True)
    justification = models.TextField(_("justification"), blank=True)
    client_address = models.GenericIPAddressField(_("adresse"), null=True, blank=True)
    # The level of assurance (acr) of the practitioner's national sign-in (Pro Santé Connect), e.g. "eidas3".
    assurance = models.CharField(_("niveau d'authentification"), max_length=32, blank=True, default="", db_default="")
    # The connected app (SMART on FHIR, issue 17) through which the patient's account acted, by its name then.
    client_app = models.CharField(_("application connectée"), max_length=120, blank=True, default="", db_default="")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = _("entrée de la trace")
        verbose_name_plural = _("trace des accès")
        constraints = [models.UniqueConstraint(fields=["profile", "seq"], name="trail_chain_position_unique")]
        indexes = [
            models.Index(fields=["actor_practitioner", "-at"], name="trail_actor_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.outcome}"


class Review(models.Model):
    """An item for staff review: each emergency access (A7) and each access to a high-profile profile (A13)."""

    class Kind(models.TextChoices):
        EMERGENCY = "emergency", _("Accès en urgence")
        HIGH_PROFILE = "high_profile", _("Accès à un profil sensible")

    kind = models.CharField(_("type"), max_length=16, choices=Kind.choices)
    trail_entry = models.ForeignKey(TrailEntry, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    profile = models.ForeignKey("records.Profile", on_delete=models.CASCADE, related_name="+")
    practitioner = models.ForeignKey("practitioners.Practitioner", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    comment = models.TextField(_("commentaire"), blank=True)
    # A13: when the reviewers were alerted by e-mail (access_control.alerts); empty until the alert is sent.
    alerted_at = models.DateTimeField(_("alerte envoyée le"), null=True, blank=True)

    class Meta:
        verbose_name = _("revue")
        verbose_name_plural = _("revues")
        indexes = [models.Index(fields=["reviewed_at", "created_at"], name="review_queue_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class ApiToken(models.Model):
    """A named API token of a practitioner or a patient (``access_control.tokens``).

    Only the SHA-256 of the secret is stored: the secret is 32 random bytes, so a fast hash is enough (nothing
    to brute-force, unlike a password) and one indexed look-up finds the token. ``prefix`` is the start of the
    token, kept to recognise it in the list; it is not secret and identifies nothing on its own.
    """

    class Scope(models.TextChoices):
        READ = "read", _("Lecture seule")
        WRITE = "write", _("Lecture et écriture")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("nom"), max_length=80)
    scope = models.CharField(_("droits"), max_length=8, choices=Scope.choices, default=Scope.READ)
    prefix = models.CharField(_("début du jeton"), max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(_("créé le"))
    expires_at = models.DateTimeField(_("expire le"))
    last_used_at = models.DateTimeField(_("dernière utilisation"), null=True, blank=True)
    last_used_address = models.GenericIPAddressField(_("dernière adresse"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("révoqué le"), null=True, blank=True)

    class Meta:
        verbose_name = _("jeton d'API")
        verbose_name_plural = _("jetons d'API")
        indexes = [models.Index(fields=["user", "-created_at"], name="api_token_user_recent_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_live(self) -> bool:
        """Neither revoked nor expired, now (what the token list shows)."""
        return self.revoked_at is None and self.expires_at > timezone.now()
