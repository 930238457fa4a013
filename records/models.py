"""Accounts, patient profiles, the document type catalogue and documents.

Writes go through ``records.actions``; reads of documents for a practitioner go through
``access_control.api`` (docs/conventions.md, Writes are actions and One door).
"""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """One login: a patient (holder or legal representative), a practitioner or a staff member."""

    class Kind(models.TextChoices):
        PATIENT = "patient", _("Patient")
        PRACTITIONER = "practitioner", _("Professionnel de santé")
        STAFF = "staff", _("Agent de l'Assurance Maladie")

    kind = models.CharField(_("type de compte"), max_length=16, choices=Kind.choices, default=Kind.PATIENT)
    preferred_language = models.CharField(
        _("langue"), max_length=5, choices=[("fr", "Français"), ("en", "English")], default="fr"
    )
    # "Sign out everywhere" (accounts.auth): a session is valid while the epoch it was stamped with is this one.
    # In the database, not the cache, so that sessions survive a Redis restart and the check needs no Redis.
    session_epoch = models.PositiveIntegerField(_("époque de session"), default=0, editable=False)

    class Meta:
        verbose_name = _("compte")
        verbose_name_plural = _("comptes")


class Profile(models.Model):
    """A person's health space (espace santé). Its documents form the record (dossier)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Notice envoyée (délai d'opposition)")  # L1
        OPPOSED = "opposed", _("Opposition enregistrée")  # L2
        OPEN = "open", _("Ouvert, jamais activé")  # L3
        ACTIVE = "active", _("Activé")  # L4
        SUSPENDED = "suspended", _("Suspendu")  # L7
        CLOSED = "closed", _("Clôturé (archivé)")  # L5, L8

    class Sex(models.TextChoices):
        MALE = "M", _("Masculin")
        FEMALE = "F", _("Féminin")

    class Channel(models.TextChoices):
        EMAIL = "email", _("Courriel")
        POST = "post", _("Courrier postal")

    class IdentityStatus(models.TextChoices):
        PROVISIONAL = "PROV", _("Identité provisoire")
        RECOVERED = "RECUP", _("Identité récupérée")
        VALIDATED = "VALI", _("Identité validée")
        QUALIFIED = "QUAL", _("Identité qualifiée")

    class ClosureReason(models.TextChoices):
        PATIENT = "patient", _("Demande du titulaire")
        ADMIN = "admin", _("Décision de l'Assurance Maladie")
        SUSPENSION = "suspension", _("Suspension non contestée")
        DECEASED = "deceased", _("Décès")

    nir = models.CharField(_("NIR"), max_length=15, unique=True)  # I1, validated by records.identifiers
    birth_name = models.CharField(_("nom de naissance"), max_length=100)
    usual_name = models.CharField(_("nom d'usage"), max_length=100, blank=True)
    first_names = models.CharField(_("prénoms"), max_length=200)
    birth_date = models.DateField(_("date de naissance"))
    sex = models.CharField(_("sexe"), max_length=1, choices=Sex.choices)
    birth_place_code = models.CharField(_("code du lieu de naissance (INSEE)"), max_length=5, blank=True)
    # The identity's confidence status (RNIV, INS referential), published as FR Core's identityReliability.
    # Profiles come from the health-insurance roster (L1), which is the INS's own source: "recovered"
    # (récupérée) until someone checked the traits against an identity document (then "qualified").
    identity_status = models.CharField(
        _("statut de l'identité"), max_length=10, choices=IdentityStatus.choices, default=IdentityStatus.RECOVERED
    )

    # French postal address (NF Z10-011: at most 6 lines of 38 characters; lines 2-6 here, line 1 is the name).
    address_complement = models.CharField(_("complément (appartement, étage)"), max_length=38, blank=True)
    address_building = models.CharField(_("bâtiment, résidence"), max_length=38, blank=True)
    address_street = models.CharField(_("numéro et voie"), max_length=38, blank=True)
    address_locality = models.CharField(_("lieu-dit, boîte postale"), max_length=38, blank=True)
    postal_code = models.CharField(_("code postal"), max_length=10, blank=True)
    city = models.CharField(_("commune"), max_length=32, blank=True)
    country = models.CharField(_("pays (ISO 3166)"), max_length=2, default="FR")

    email = models.EmailField(_("courriel"), blank=True)
    email_verified = models.BooleanField(_("courriel vérifié"), default=False)
    preferred_language = models.CharField(
        _("langue"), max_length=5, choices=[("fr", "Français"), ("en", "English")], default="fr"
    )
    preferred_channel = models.CharField(
        _("canal préféré"), max_length=8, choices=Channel.choices, default=Channel.POST
    )
    new_document_notices = models.BooleanField(_("avis de nouveau document"), default=False)

    state = models.CharField(_("état"), max_length=16, choices=State.choices, default=State.PENDING)
    notice_sent_at = models.DateTimeField(_("notice de pré-ouverture envoyée le"), null=True, blank=True)
    opposed_at = models.DateTimeField(_("opposition le"), null=True, blank=True)
    opened_at = models.DateTimeField(_("ouvert le"), null=True, blank=True)
    activated_at = models.DateTimeField(_("activé le"), null=True, blank=True)
    suspended_at = models.DateTimeField(_("suspendu le"), null=True, blank=True)
    closed_at = models.DateTimeField(_("clôturé le"), null=True, blank=True)
    closure_reason = models.CharField(_("motif de clôture"), max_length=16, choices=ClosureReason.choices, blank=True)
    archive_until = models.DateTimeField(_("archivé jusqu'au"), null=True, blank=True)
    deletion_requested_at = models.DateTimeField(_("suppression anticipée demandée le"), null=True, blank=True)
    deceased_at = models.DateField(_("décédé le"), null=True, blank=True)

    provisional_code_hash = models.CharField(max_length=128, blank=True)  # L1: stored hashed
    provisional_code_expires_at = models.DateTimeField(null=True, blank=True)

    emergency_access_opt_out = models.BooleanField(_("refus de l'accès en urgence"), default=False)  # A7
    high_profile = models.BooleanField(_("profil sensible"), default=False)  # A13
    treating_doctor = models.ForeignKey(
        "practitioners.Practitioner",
        verbose_name=_("médecin traitant"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="treated_profiles",
    )  # A6
    legal_representative = models.ForeignKey(
        "self",
        verbose_name=_("représentant légal"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="represented_profiles",
    )  # L10
    user = models.OneToOneField(
        User, verbose_name=_("compte"), on_delete=models.PROTECT, null=True, blank=True, related_name="profile"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("profil")
        verbose_name_plural = _("profils")
        indexes = [
            models.Index(fields=["state", "notice_sent_at"], name="profile_state_notice_idx"),
            models.Index(fields=["state", "suspended_at"], name="profile_state_suspended_idx"),
            models.Index(fields=["state", "archive_until"], name="profile_state_archive_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.first_names.split(' ')[0]} {self.usual_name or self.birth_name}"

    @property
    def display_name(self) -> str:
        return f"{self.first_names} {self.usual_name or self.birth_name}"

    @property
    def is_open_to_practitioners(self) -> bool:
        return self.state in (self.State.OPEN, self.State.ACTIVE)


class NirIndex(models.Model):
    """Which profile holds a NIR: one row per profile, written with it, unique by the NIR across the country (I1).

    On plain PostgreSQL and SQLite ``Profile.nir`` is unique by itself and look-ups read it
    (``records.nir_index.profiles_with_nir``). On Citus, where profiles are sharded by id, this table is sharded by
    the NIR: its key keeps the NIR unique nationwide and a look-up by NIR is routed to one shard (docs/scaling.md).
    """

    nir = models.CharField(_("NIR"), max_length=15, primary_key=True)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = _("index des NIR")
        verbose_name_plural = _("index des NIR")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.profile_id}"


class DocumentType(models.Model):
    """Type codes from JDV_J66 (LOINC + TRE_A05), with their JDV_J57 class. Seeded by a data migration."""

    class DocumentClass(models.TextChoices):
        REPORT = "10", _("Compte rendu")
        SYNTHESIS = "11", _("Synthèse")
        IMAGING = "31", _("Imagerie médicale")
        PRESCRIPTION = "42", _("Prescription")
        DISPENSATION = "43", _("Dispensation")
        CARE_PLAN = "44", _("Plan de soins / protocole")
        TREATMENT = "45", _("Traitement administré")
        CERTIFICATE = "52", _("Certificat / déclaration")
        REIMBURSEMENT = "60", _("Données de remboursement")
        PATIENT = "90", _("Document déposé par le patient")
        ADMINISTRATIVE = "95", _("Document de gestion")

    code = models.CharField(_("code"), max_length=20, unique=True)
    code_system = models.CharField(_("système"), max_length=10)  # LOINC or TRE_A05
    label_fr = models.CharField(_("libellé (français)"), max_length=120)
    label_en = models.CharField(_("libellé (anglais)"), max_length=120)
    class_code = models.CharField(_("classe"), max_length=2, choices=DocumentClass.choices)

    class Meta:
        verbose_name = _("type de document")
        verbose_name_plural = _("types de document")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.label_fr}"

    @property
    def patient_may_deposit(self) -> bool:
        return self.code.startswith("DOCPAT")  # A10

    def label(self, language: str) -> str:
        return self.label_en if language == "en" else self.label_fr


class Document(models.Model):
    """One document of a record: metadata here, the encrypted body in the document store (rule D)."""

    class AuthorKind(models.TextChoices):
        PRACTITIONER = "practitioner", _("Professionnel de santé")
        PATIENT = "patient", _("Patient")

    class Status(models.TextChoices):
        CURRENT = "current", _("En vigueur")
        SUPERSEDED = "superseded", _("Remplacé")

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="documents")
    document_type = models.ForeignKey(DocumentType, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(_("titre"), max_length=200)
    care_date = models.DateField(_("date des soins"))
    author_kind = models.CharField(max_length=16, choices=AuthorKind.choices)
    author_practitioner = models.ForeignKey(
        "practitioners.Practitioner", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    deposited_at = models.DateTimeField(_("déposé le"))
    size = models.BigIntegerField(_("taille (octets)"))
    content_type = models.CharField(_("type de contenu"), max_length=100)  # detected from the bytes
    original_name = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64)
    storage_key = models.CharField(max_length=200, unique=True)
    wrapped_key = models.BinaryField()  # the data key wrapped by the master key
    master_key_id = models.CharField(max_length=32)

    masked_at = models.DateTimeField(_("masqué le"), null=True, blank=True)  # A4 (MASQUE_PS)
    held_until = models.DateTimeField(_("invisible au patient jusqu'au"), null=True, blank=True)  # A8
    hold_released_at = models.DateTimeField(_("rendu visible le"), null=True, blank=True)
    hold_reminder_sent_at = models.DateTimeField(null=True, blank=True)
    hidden_from_representatives = models.BooleanField(_("secret du mineur"), default=False)  # A9
    deleted_at = models.DateTimeField(_("supprimé le"), null=True, blank=True)  # A10, own uploads only

    # Document-sharing metadata (IHE MHD, ANS PDSm): the reference's status (a replaced or withdrawn document
    # stays readable, marked superseded), the document it replaces (same profile; no database constraint, so
    # that a sharded layout needs no distribution column in it), the unique id its author gave it, its SHA-1
    # (FHIR's Attachment.hash; SHA-256 stays the integrity check, rule D) and the care setting codes.
    status = models.CharField(_("statut"), max_length=12, choices=Status.choices, default=Status.CURRENT)
    replaces = models.ForeignKey(
        "self", on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    unique_id = models.CharField(_("identifiant unique (auteur)"), max_length=128, blank=True)
    sha1 = models.CharField(max_length=40, blank=True)
    facility_type = models.CharField(_("secteur d'activité"), max_length=16, blank=True)  # TRE_R02 / TRE_A00
    practice_setting = models.CharField(_("cadre d'exercice"), max_length=16, blank=True)  # TRE_R02 / TRE_A00

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        indexes = [
            # Keeps the "documents of one patient" query on one index range (anchors: 1.7 ms -> 0.4 ms p50).
            models.Index(
                fields=["profile", "-deposited_at"],
                name="document_profile_recent_idx",
                include=["document_type", "author_practitioner", "masked_at", "deleted_at"],
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(author_kind="patient", author_practitioner__isnull=True)
                | Q(author_kind="practitioner", author_practitioner__isnull=False),
                name="document_author_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.document_type.code} #{self.pk}"

    @property
    def is_masked(self) -> bool:
        return self.masked_at is not None

    @property
    def is_held(self) -> bool:
        return self.held_until is not None and self.hold_released_at is None


class WorkerHeartbeat(models.Model):
    """When a Celery worker last ran the heartbeat task (``records.heartbeat``), read by ``/readyz``.

    One row per heartbeat name, upserted by the worker. In the database, not the cache: the readiness check must
    answer while Redis is down, and a Redis restart must not make a live worker look dead.
    """

    name = models.CharField(max_length=32, primary_key=True)
    seen_at = models.DateTimeField(_("vu le"))
    answered_by = models.CharField(_("par le worker"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("battement du worker")
        verbose_name_plural = _("battements du worker")

    def __str__(self) -> str:
        return f"{self.name} {self.seen_at:%Y-%m-%d %H:%M:%S}"


class HealthSummary(models.Model):
    """The patient's health summary (« profil médical »): one per profile, holding the summary's own mask (A4).

    Its entries are ``HealthSummaryEntry`` rows. Practitioners read it under the rules of a patient-deposited
    synthesis (``records.health_summary.SUMMARY_DOCUMENT_TYPE``), through ``access_control.api``.
    """

    profile = models.OneToOneField(Profile, on_delete=models.CASCADE, related_name="health_summary")
    masked_at = models.DateTimeField(_("masqué le"), null=True, blank=True)  # A4 (MASQUE_PS)
    updated_at = models.DateTimeField(_("mis à jour le"))

    class Meta:
        verbose_name = _("profil médical")
        verbose_name_plural = _("profils médicaux")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"


class HealthSummaryEntry(models.Model):
    """One line of the health summary: an allergy, an ongoing treatment, a vaccination, a history item or a contact.

    Removing a line keeps the row with ``removed_at`` set, so that the data export shows every change.
    """

    class Kind(models.TextChoices):
        ALLERGY = "allergy", _("Allergies et intolérances")
        TREATMENT = "treatment", _("Traitements en cours")
        VACCINATION = "vaccination", _("Vaccinations")
        HISTORY = "history", _("Antécédents médicaux et chirurgicaux")
        EMERGENCY_CONTACT = "emergency_contact", _("Personnes à prévenir en cas d'urgence")

    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="health_summary_entries")
    kind = models.CharField(_("rubrique"), max_length=20, choices=Kind.choices)
    label = models.CharField(_("libellé"), max_length=200)
    detail = models.CharField(_("précisions"), max_length=300, blank=True)
    on_date = models.DateField(_("date"), null=True, blank=True)
    phone = models.CharField(_("téléphone"), max_length=20, blank=True)  # emergency contacts only
    added_at = models.DateTimeField(_("ajouté le"))
    removed_at = models.DateTimeField(_("retiré le"), null=True, blank=True)

    class Meta:
        verbose_name = _("ligne du profil médical")
        verbose_name_plural = _("lignes du profil médical")
        indexes = [models.Index(fields=["profile", "kind", "added_at"], name="summary_entry_profile_idx")]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"
