"""Access-control actions: what patients, practitioners and staff change about who sees what (A2-A13).

Each ``do_*`` takes its actor explicitly (a ``records.User`` — patient or staff —, a ``Practitioner``, or
``None`` for the system where said), owns its durable transaction, locks what it changes, checks everything before it
writes, writes its trail entry (T1) and any notice (N5) in that transaction, and returns the changed object.
A refused action raises ``IllegalAction`` (a ``ValidationError`` with a French message) and changes nothing.

Masking and blocking belong to activated patients (L4): the holder, or the legal representative managing a
minor's profile from their own account (L10).
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import IO, TYPE_CHECKING, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.models import Notice
from notifications.outbox import queue_notice
from practitioners.models import Practitioner, Profession
from records import storage
from records.actors import Actor, is_staff, speaks_for
from records.lifecycle import is_minor
from records.models import Document, DocumentType, Profile, User

from .api import documents_visible_to_patient
from .models import (
    AccessRule,
    Block,
    CategoryMask,
    DocumentCategory,
    OccupationalAuthorisation,
    Review,
    TreatingRightsGrant,
)
from .rules import OPEN_STATES, Action
from .trail import record_entry

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

State = Profile.State
# The rows naming a practitioner that ``_give`` and ``_withdraw`` create and delete.
_Row = TypeVar("_Row", Block, OccupationalAuthorisation, TreatingRightsGrant)


class IllegalAction(ValidationError):
    """An access-control action refused as asked (wrong actor, state or target). Nothing was changed."""


# --- Helpers --------------------------------------------------------------------------------------------


def _refuse(message: "StrOrPromise", code: str, **params: object) -> IllegalAction:
    return IllegalAction(message, code=code, params=params or None)


def _not_allowed() -> IllegalAction:
    return _refuse(_("Vous n'êtes pas autorisé à effectuer cette opération sur ce profil."), "actor_not_allowed")


def _lock_profile(profile: Profile) -> Profile:
    """The profile's row locked and read afresh; its legal representative is read on first use.

    The lock names the profile alone: on Citus the representative's row may be on another shard, and a lock must
    be routed to one (docs/scaling.md).
    """
    return Profile.objects.select_for_update(no_key=True).get(pk=profile.pk)


def _lock_document(document: Document) -> Document:
    """The document's row locked and read afresh, found by its id and its profile's (one shard on Citus)."""
    profile_id = document.profile_id
    if profile_id is None:  # an id alone (a caller that never read the row)
        profile_id = Document.objects.filter(pk=document.pk).values_list("profile_id", flat=True).get()
    locked = Document.objects.select_for_update().get(pk=document.pk, profile_id=profile_id)
    locked.profile = Profile.objects.get(pk=profile_id)
    return locked


def _save_document(document: Document, field: str) -> None:
    """Write one changed field of a locked document, found by its id and its profile's (one shard on Citus)."""
    Document.objects.filter(pk=document.pk, profile_id=document.profile_id).update(**{field: getattr(document, field)})


def _require_activated(profile: Profile) -> None:
    """L4: masking and blocking are for an activated patient."""
    if profile.state != State.ACTIVE:
        raise _refuse(
            _("Cette opération n'est possible que sur un profil activé par son titulaire."), "profile_not_activated"
        )


def _require_open(profile: Profile) -> None:
    if profile.state not in OPEN_STATES:
        raise _refuse(
            _("Opération impossible : ce profil est dans l'état « %(state)s »."),
            "illegal_state",
            state=profile.get_state_display(),
        )


def _practitioner_ref(practitioner: Practitioner) -> str:
    return f"rpps:{practitioner.rpps}"


def _document_for_patient(document: Document, actor: Actor) -> Document:
    """The document locked, if the patient acting can see it (A8, A9); else the same error as a forged id."""
    document = _lock_document(document)
    profile = document.profile
    if (
        not isinstance(actor, User)  # a practitioner never speaks for a profile
        or not speaks_for(profile, actor)
        or not documents_visible_to_patient(actor, profile).filter(pk=document.pk).exists()
    ):
        raise _refuse(_("Ce document est introuvable."), "document_not_found")
    return document


def _give(model: type[_Row], profile: Profile, practitioner: Practitioner, *, actor: Actor, action: str) -> _Row:
    """The profile's row of ``model`` naming the practitioner (a block or a grant), created and traced once.

    Runs inside the caller's transaction, after its checks, with the profile locked.
    """
    row, created = model.objects.get_or_create(profile=profile, practitioner=practitioner)
    if created:
        record_entry(profile=profile, action=action, actor=actor, detail=_practitioner_ref(practitioner))
    return row


def _withdraw(model: type[_Row], profile: Profile, practitioner: Practitioner, *, actor: Actor, action: str) -> Profile:
    """Delete the profile's row of ``model`` naming the practitioner: possible at any time, traced if there was one."""
    with transaction.atomic(durable=True):
        profile = _lock_profile(profile)
        if not speaks_for(profile, actor):
            raise _not_allowed()
        deleted, _rows = model.objects.filter(profile=profile, practitioner=practitioner).delete()
        if deleted:
            record_entry(profile=profile, action=action, actor=actor, detail=_practitioner_ref(practitioner))
    return profile


# --- A5: blocking ---------------------------------------------------------------------------------------


def do_block_practitioner(profile: Profile, practitioner: Practitioner, *, actor: Actor, durable: bool = True) -> Block:
    """A5: the patient denies one named practitioner every listing and opening, emergency included."""
    with transaction.atomic(durable=durable):
        profile = _lock_profile(profile)
        if not speaks_for(profile, actor):
            raise _not_allowed()
        _require_activated(profile)
        if profile.treating_doctor_id == practitioner.pk:
            raise _refuse(
                _(
                    "Vous ne pouvez pas bloquer votre médecin traitant : déclarez d'abord un autre médecin "
                    "traitant ou retirez celui-ci."
                ),
                "treating_doctor",
            )
        if TreatingRightsGrant.objects.filter(profile=profile, practitioner=practitioner).exists():
            raise _refuse(
                _(
                    "Vous avez donné à ce professionnel les droits de votre médecin traitant : retirez-les avant de "
                    "le bloquer."
                ),
                "treating_rights_granted",
            )
        return _give(Block, profile, practitioner, actor=actor, action=Action.BLOCK)


def do_unblock_practitioner(profile: Profile, practitioner: Practitioner, *, actor: Actor) -> Profile:
    """A5: lift a block (possible at any time)."""
    return _withdraw(Block, profile, practitioner, actor=actor, action=Action.UNBLOCK)


# --- A6: treating doctor --------------------------------------------------------------------------------


def do_declare_treating_doctor(
    profile: Profile, practitioner: Practitioner, *, actor: Actor, durable: bool = True
) -> Profile:
    """A6: the patient (or staff recording a declaration) names the treating doctor, replacing any other."""
    with transaction.atomic(durable=durable):
        profile = _lock_profile(profile)
        if not (speaks_for(profile, actor) or is_staff(actor)):
            raise _not_allowed()
        _require_open(profile)
        practitioner = Practitioner.objects.select_related("profession").get(pk=practitioner.pk)
        if (
            not practitioner.profession.is_doctor
            or practitioner.is_insurer_physician
            or practitioner.is_occupational_physician
        ):
            raise _refuse(
                _("Le médecin traitant doit être un médecin de soins (ni médecin conseil, ni médecin du travail)."),
                "not_a_doctor",
            )
        if not practitioner.is_active:
            raise _refuse(_("Ce médecin n'est pas en exercice."), "practitioner_inactive")
        if Block.objects.filter(profile=profile, practitioner=practitioner).exists():
            raise _refuse(
                _("Vous avez bloqué ce médecin : débloquez-le avant de le déclarer comme médecin traitant."),
                "practitioner_blocked",
            )
        if profile.treating_doctor_id == practitioner.pk:
            return profile
        profile.treating_doctor = practitioner
        profile.save(update_fields=["treating_doctor"])
        record_entry(
            profile=profile, action=Action.DECLARE_TREATING_DOCTOR, actor=actor, detail=_practitioner_ref(practitioner)
        )
    return profile


def do_remove_treating_doctor(profile: Profile, *, actor: Actor) -> Profile:
    """A6: the profile has no treating doctor any more (the doctor may then be blocked)."""
    with transaction.atomic(durable=True):
        profile = _lock_profile(profile)
        if not (speaks_for(profile, actor) or is_staff(actor)):
            raise _not_allowed()
        if profile.treating_doctor_id is None:
            return profile
        previous = Practitioner.objects.get(pk=profile.treating_doctor_id)
        profile.treating_doctor = None
        profile.save(update_fields=["treating_doctor"])
        record_entry(
            profile=profile, action=Action.REMOVE_TREATING_DOCTOR, actor=actor, detail=_practitioner_ref(previous)
        )
    return profile


# --- A7: emergency access opt-out -----------------------------------------------------------------------


def do_set_emergency_opt_out(profile: Profile, opt_out: bool, *, actor: Actor, durable: bool = True) -> Profile:
    """A7: the patient (or staff on their behalf) refuses, or accepts again, emergency access."""
    with transaction.atomic(durable=durable):
        profile = _lock_profile(profile)
        if not (speaks_for(profile, actor) or is_staff(actor)):
            raise _not_allowed()
        if profile.state in (State.CLOSED, State.OPPOSED):
            raise _refuse(
                _("Opération impossible : ce profil est dans l'état « %(state)s »."),
                "illegal_state",
                state=profile.get_state_display(),
            )
        if profile.emergency_access_opt_out == opt_out:
            return profile
        profile.emergency_access_opt_out = opt_out
        profile.save(update_fields=["emergency_access_opt_out"])
        record_entry(
            profile=profile, action=Action.EMERGENCY_OPT_OUT, actor=actor, detail="refused" if opt_out else "accepted"
        )
    return profile


# --- A3: occupational physicians ------------------------------------------------------------------------


def do_authorise_occupational_physician(
    profile: Profile, practitioner: Practitioner, *, actor: Actor
) -> OccupationalAuthorisation:
    """A3: the patient's express authorisation, given in the portal, for one occupational physician."""
    with transaction.atomic(durable=True):
        profile = _lock_profile(profile)
        if not speaks_for(profile, actor):
            raise _not_allowed()
        _require_activated(profile)
        if not practitioner.is_occupational_physician or practitioner.is_insurer_physician:
            raise _refuse(
                _("Seul un médecin du travail peut recevoir cette autorisation."), "not_occupational_physician"
            )
        return _give(
            OccupationalAuthorisation, profile, practitioner, actor=actor, action=Action.AUTHORISE_OCCUPATIONAL
        )


def do_revoke_occupational_physician(profile: Profile, practitioner: Practitioner, *, actor: Actor) -> Profile:
    """A3: the authorisation is revocable at any time."""
    return _withdraw(OccupationalAuthorisation, profile, practitioner, actor=actor, action=Action.REVOKE_OCCUPATIONAL)


# --- A4: the treating doctor's rights granted to other practitioners ---------------------------------------


def do_grant_treating_rights(profile: Profile, practitioner: Practitioner, *, actor: Actor) -> TreatingRightsGrant:
    """A4: the patient lets one more practitioner read masked documents, as the treating doctor does.

    Only masks are lifted: the matrix (A2) and the record-level rules still apply. Not for a blocked practitioner
    (unblock first), nor for those who may never read the record (insurers' physicians, A3) or only with their
    own authorisation (occupational physicians, A3), nor for a practitioner who is not in practice.
    """
    with transaction.atomic(durable=True):
        profile = _lock_profile(profile)
        if not speaks_for(profile, actor):
            raise _not_allowed()
        _require_activated(profile)
        practitioner = Practitioner.objects.select_related("profession").get(pk=practitioner.pk)
        if practitioner.is_insurer_physician or practitioner.is_occupational_physician:
            raise _refuse(
                _("Les droits du médecin traitant ne peuvent pas être donnés à un médecin conseil ou du travail."),
                "forbidden_actor",
            )
        if not practitioner.is_active:
            raise _refuse(_("Ce professionnel n'est pas en exercice."), "practitioner_inactive")
        if Block.objects.filter(profile=profile, practitioner=practitioner).exists():
            raise _refuse(
                _("Vous avez bloqué ce professionnel : débloquez-le avant de lui donner des droits."),
                "practitioner_blocked",
            )
        return _give(TreatingRightsGrant, profile, practitioner, actor=actor, action=Action.GRANT_TREATING_RIGHTS)


def do_revoke_treating_rights(profile: Profile, practitioner: Practitioner, *, actor: Actor) -> Profile:
    """A4: the rights granted are revocable at any time, the profile's state notwithstanding."""
    return _withdraw(TreatingRightsGrant, profile, practitioner, actor=actor, action=Action.REVOKE_TREATING_RIGHTS)


# --- A4, A12: masking -----------------------------------------------------------------------------------


def do_mask_document(document: Document, *, actor: Actor, durable: bool = True) -> Document:
    """A4: hide a document from every practitioner but its author, the treating doctor and those granted their rights."""
    with transaction.atomic(durable=durable):
        document = _document_for_patient(document, actor)
        _require_activated(document.profile)
        if document.masked_at is not None:
            return document
        document.masked_at = timezone.now()
        _save_document(document, "masked_at")
        record_entry(profile=document.profile, action=Action.MASK_DOCUMENT, actor=actor, document=document)
    return document


def do_unmask_document(document: Document, *, actor: Actor) -> Document:
    """A4: unmasking is allowed at any time."""
    with transaction.atomic(durable=True):
        document = _document_for_patient(document, actor)
        if document.masked_at is None:
            return document
        document.masked_at = None
        _save_document(document, "masked_at")
        record_entry(profile=document.profile, action=Action.UNMASK_DOCUMENT, actor=actor, document=document)
    return document


def do_mask_category(profile: Profile, category: DocumentCategory, *, actor: Actor) -> CategoryMask:
    """A12: mask a whole category, for the documents present and those deposited later."""
    with transaction.atomic(durable=True):
        profile = _lock_profile(profile)
        if not speaks_for(profile, actor):
            raise _not_allowed()
        _require_activated(profile)
        mask, created = CategoryMask.objects.get_or_create(profile=profile, category=category)
        if created:
            record_entry(profile=profile, action=Action.MASK_CATEGORY, actor=actor, detail=category.code)
    return mask


def do_unmask_category(profile: Profile, category: DocumentCategory, *, actor: Actor) -> Profile:
    """A12: the category's documents are visible again (those masked one by one stay masked, A4)."""
    with transaction.atomic(durable=True):
        profile = _lock_profile(profile)
        if not speaks_for(profile, actor):
            raise _not_allowed()
        deleted, _rows = CategoryMask.objects.filter(profile=profile, category=category).delete()
        if deleted:
            record_entry(profile=profile, action=Action.UNMASK_CATEGORY, actor=actor, detail=category.code)
    return profile


# --- A8, A9, A10: deposit, holds, deletion ---------------------------------------------------------------


def _document_type(value: DocumentType | str) -> DocumentType:
    if isinstance(value, DocumentType):
        return value
    try:
        return DocumentType.objects.get(code=value)
    except DocumentType.DoesNotExist:
        raise _refuse(_("Type de document inconnu."), "unknown_document_type") from None


def _check_depositor(
    profile: Profile, actor: Actor, document_type: DocumentType, *, hold: bool, minors_secret: bool
) -> tuple[str, Practitioner | None, int, frozenset[str]]:
    """A10 (and A8, A9): who may deposit what; returns (author_kind, author_practitioner, limits)."""
    if isinstance(actor, Practitioner):
        if not actor.is_active or actor.is_insurer_physician:  # A1, A3: insurers' physicians have no access
            raise _refuse(_("Vous ne pouvez pas déposer de document dans un dossier."), "practitioner_not_allowed")
        if minors_secret and not is_minor(profile.birth_date):
            raise _refuse(_("Le secret du mineur ne s'applique qu'au dossier d'un patient mineur."), "not_a_minor")
        return (
            Document.AuthorKind.PRACTITIONER,
            actor,
            settings.CARNET_PRACTITIONER_UPLOAD_MAX_BYTES,
            storage.PRACTITIONER_TYPES,
        )
    if not speaks_for(profile, actor):
        raise _not_allowed()
    if not document_type.patient_may_deposit:
        raise _refuse(
            _("Ce type de document ne peut être déposé que par un professionnel de santé."), "type_not_for_patients"
        )
    if hold or minors_secret:
        raise _refuse(
            _("Seul un professionnel de santé peut déposer un document invisible au patient ou sous secret."),
            "option_not_for_patients",
        )
    return Document.AuthorKind.PATIENT, None, settings.CARNET_PATIENT_UPLOAD_MAX_BYTES, storage.PATIENT_TYPES


def _refuse_deposit(profile: Profile) -> IllegalAction:
    return _refuse(
        _("Impossible de déposer un document : ce dossier n'est pas ouvert (état « %(state)s »)."),
        "profile_not_open",
        state=profile.get_state_display(),
    )


@dataclass(frozen=True)
class Submission:
    """One document of a deposit: its body and metadata (what ``do_deposit_document`` takes, and more).

    ``unique_id``: the id its author gave the document (IHE ``uniqueId``, FHIR ``masterIdentifier``), unique in
    the record. ``facility_type``, ``practice_setting``: care-setting codes (TRE_R02 for practitioners, TRE_A00
    for patients), checked by the caller. ``replaces``: a document of the same record this one replaces; it
    becomes superseded (only its author may replace it).
    """

    fileobj: IO[bytes]
    document_type: DocumentType | str
    title: str
    care_date: date | None = None
    original_name: str = ""
    hold: bool = False
    minors_secret: bool = False
    unique_id: str = ""
    facility_type: str = ""
    practice_setting: str = ""
    replaces: int | None = None


class _Sha1Reader:
    """A file wrapper that computes the SHA-1 of what is read through it (FHIR's Attachment.hash)."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self.fileobj = fileobj
        self.digest = hashlib.sha1(usedforsecurity=False)

    def read(self, size: int = -1) -> bytes:
        chunk = self.fileobj.read(size)
        self.digest.update(chunk)
        return chunk


def do_deposit_document(
    profile: Profile,
    *,
    actor: Actor,
    fileobj: IO[bytes],
    document_type: DocumentType | str,
    title: str,
    care_date: date | None = None,
    original_name: str = "",
    hold: bool = False,
    minors_secret: bool = False,
    durable: bool = True,
) -> Document:
    """A10: a practitioner (blocked ones too, A5) or the patient (``DOCPAT*`` types) adds a document.

    ``hold`` (practitioners, A8): hidden from the patient until released, at most CARNET_HOLD_RELEASE_DAYS.
    ``minors_secret`` (practitioners, on a minor's profile, A9): hidden from the legal representatives.
    The body is checked and stored encrypted before the transaction; if the transaction fails it is deleted.
    """
    submission = Submission(
        fileobj=fileobj,
        document_type=document_type,
        title=title,
        care_date=care_date,
        original_name=original_name,
        hold=hold,
        minors_secret=minors_secret,
    )
    return do_deposit_documents(profile, [submission], actor=actor, durable=durable)[0]


def do_deposit_documents(
    profile: Profile, submissions: Sequence[Submission], *, actor: Actor, durable: bool = True
) -> list[Document]:
    """A10: deposit several documents at once, all or none (an IHE MHD Provide Document Bundle).

    Every document is checked like a single deposit (A8, A9, A10); a replacement supersedes the document it
    replaces, in the same transaction, and is traced (T1). If any document is refused, nothing is kept: the
    bodies already stored are deleted.
    """
    if not submissions:
        raise _refuse(_("Aucun document à déposer."), "no_document")
    current = Profile.objects.get(pk=profile.pk)  # its legal representative is read on first use (another shard)
    checked = []
    for submission in submissions:
        document_type = _document_type(submission.document_type)
        title = (submission.title or "").strip()
        if not title:
            raise _refuse(_("Indiquez le titre du document."), "title_required")
        limits = _check_depositor(
            current, actor, document_type, hold=submission.hold, minors_secret=submission.minors_secret
        )
        checked.append((submission, document_type, title, limits))
    unique_ids = [s.unique_id for s in submissions if s.unique_id]
    if len(set(unique_ids)) != len(unique_ids):
        raise _duplicate_unique_id()
    if current.state not in OPEN_STATES:
        raise _refuse_deposit(current)
    stored: list[tuple[storage.StoredBody, str]] = []
    try:
        for submission, _type, _title, (_kind, _author, max_bytes, allowed_types) in checked:
            reader = _Sha1Reader(submission.fileobj)
            body = storage.store_body(reader, max_bytes=max_bytes, allowed_types=allowed_types)
            stored.append((body, reader.digest.hexdigest()))
        with transaction.atomic(durable=durable):
            locked = _lock_profile(current)
            if locked.state not in OPEN_STATES:  # changed while the bodies were stored
                raise _refuse_deposit(locked)
            if unique_ids and Document.objects.filter(profile=locked, unique_id__in=unique_ids).exists():
                raise _duplicate_unique_id()
            now = timezone.now()
            documents = []
            for (submission, document_type, title, limits), (body, sha1) in zip(checked, stored, strict=True):
                replaced = _replaceable(locked, submission.replaces, actor) if submission.replaces else None
                documents.append(
                    _create_document(locked, submission, document_type, title, limits, body, sha1, now, actor, replaced)
                )
    except BaseException:
        for body, _sha1 in stored:
            storage.delete_body(body.storage_key)
        raise
    return documents


def _duplicate_unique_id() -> IllegalAction:
    return _refuse(_("Un document de ce dossier porte déjà cet identifiant unique."), "duplicate_unique_id")


def _replaceable(profile: Profile, document_id: int, actor: Actor) -> Document:
    """The current document of this record that the actor wrote, locked; else one refusal for every case.

    Only a document's author replaces it (a practitioner their own deposit, a patient their own upload); the
    refusal does not say whether the document exists (A4: a masked document is not admitted to).
    """
    document = (
        Document.objects.select_for_update(of=("self",))
        .filter(pk=document_id, profile=profile, status=Document.Status.CURRENT, deleted_at__isnull=True)
        .first()
    )
    if document is not None:
        document.profile = profile
        if isinstance(actor, Practitioner):
            if document.author_practitioner_id == actor.pk:
                return document
        elif document.author_kind == Document.AuthorKind.PATIENT:
            return document
    raise _not_replaceable()


def _not_replaceable() -> IllegalAction:
    return _refuse(
        _("Le document à remplacer est introuvable, déjà remplacé, ou vous n'en êtes pas l'auteur."),
        "document_not_replaceable",
    )


def _create_document(
    locked: Profile,
    submission: Submission,
    document_type: DocumentType,
    title: str,
    limits: tuple[str, Practitioner | None, int, frozenset[str]],
    body: storage.StoredBody,
    sha1: str,
    now: datetime,
    actor: Actor,
    replaced: Document | None,
) -> Document:
    """Write one deposited document, its trail entries (T1) and notice (N7); inside the caller's transaction."""
    author_kind, author_practitioner, _max_bytes, _types = limits
    hold, minors_secret = submission.hold, submission.minors_secret
    document = Document.objects.create(
        profile=locked,
        document_type=document_type,
        title=title[:200],
        care_date=submission.care_date or timezone.localdate(),
        author_kind=author_kind,
        author_practitioner=author_practitioner,
        deposited_at=now,
        size=body.size,
        content_type=body.content_type,
        original_name=(submission.original_name or "")[:200],
        sha256=body.sha256,
        sha1=sha1,
        storage_key=body.storage_key,
        wrapped_key=body.wrapped_key,
        master_key_id=body.master_key_id,
        held_until=now + timedelta(days=settings.CARNET_HOLD_RELEASE_DAYS) if hold else None,  # A8
        hidden_from_representatives=minors_secret,  # A9
        unique_id=submission.unique_id[:128],
        facility_type=submission.facility_type[:16],
        practice_setting=submission.practice_setting[:16],
        replaces=replaced,
    )
    detail = ",".join(name for name, on in (("hold", hold), ("minors_secret", minors_secret)) if on)
    if replaced is not None:
        detail = ",".join(filter(None, [detail, f"replaces:{replaced.pk}"]))
        _supersede(replaced, actor=actor)
    entry = record_entry(profile=locked, action=Action.DEPOSIT, actor=actor, document=document, detail=detail)
    # N7: a held document is announced when released; one under the minor's secret never (A9).
    if locked.new_document_notices and not hold and not minors_secret and author_kind != Document.AuthorKind.PATIENT:
        queue_notice(locked, Notice.Kind.NEW_DOCUMENT, trail_entry=entry)
    return document


def _supersede(document: Document, *, actor: Actor) -> None:
    document.status = Document.Status.SUPERSEDED
    document.save(update_fields=["status"])
    record_entry(profile=document.profile, action=Action.SUPERSEDE_DOCUMENT, actor=actor, document=document)


def do_supersede_document(document_id: int, *, actor: Actor) -> Document:
    """Withdraw a document from current use (IHE MHD metadata update: status superseded), by its author only.

    The document stays readable by whoever may read it (the door decides), marked superseded. Superseding a
    document twice, one the actor did not write or one that does not exist is refused alike (no oracle) and
    changes nothing.
    """
    profile_id = Document.objects.filter(pk=document_id).values_list("profile_id", flat=True).first()
    with transaction.atomic(durable=True):
        if profile_id is None:
            raise _not_replaceable()
        profile = _lock_profile(Profile(pk=profile_id))
        if profile.state not in OPEN_STATES:
            raise _refuse_deposit(profile)
        replaced = _replaceable(profile, document_id, actor)
        _supersede(replaced, actor=actor)
    return replaced


def do_release_hold(document: Document, *, actor: Actor | None) -> Document:
    """A8: the document becomes visible to the patient (after the announcement consultation).

    By its author, the treating doctor, or the system (``actor=None``: the scheduled release after
    CARNET_HOLD_RELEASE_DAYS). Releasing a document that is not held changes nothing.
    """
    with transaction.atomic(durable=True):
        document = _lock_document(document)
        profile = document.profile
        if actor is not None and not (
            isinstance(actor, Practitioner)
            and actor.is_active
            and actor.pk in (document.author_practitioner_id, profile.treating_doctor_id)
        ):
            raise _refuse(
                _("Seul l'auteur du document ou le médecin traitant peut le rendre visible au patient."),
                "not_author",
            )
        if not document.is_held:
            return document
        document.hold_released_at = timezone.now()
        _save_document(document, "hold_released_at")
        entry = record_entry(profile=profile, action=Action.RELEASE_HOLD, actor=actor, document=document)
        if profile.new_document_notices and not document.hidden_from_representatives:
            queue_notice(profile, Notice.Kind.NEW_DOCUMENT, trail_entry=entry)
    return document


def do_delete_own_document(document: Document, *, actor: Actor) -> Document:
    """A10: the patient deletes a document they deposited themselves (practitioners' ones can only be masked).

    The row stays, marked deleted (invisible to everyone, its trail intact); the body is removed after commit.
    """
    with transaction.atomic(durable=True):
        document = _document_for_patient(document, actor)
        if document.author_kind != Document.AuthorKind.PATIENT:
            raise _refuse(
                _(
                    "Un document déposé par un professionnel de santé ne peut pas être supprimé ; vous pouvez le masquer."
                ),
                "not_own_document",
            )
        document.deleted_at = timezone.now()
        _save_document(document, "deleted_at")
        record_entry(profile=document.profile, action=Action.DELETE_DOCUMENT, actor=actor, document=document)
        storage_key = document.storage_key
        transaction.on_commit(lambda: storage.delete_body(storage_key))
    return document


# --- Staff: A13, A2, reviews ------------------------------------------------------------------------------


def do_set_high_profile(profile: Profile, high_profile: bool, *, actor: Actor, durable: bool = True) -> Profile:
    """A13: staff flag a profile as sensitive; every practitioner access to it is then listed for review."""
    if not is_staff(actor):
        raise _not_allowed()
    with transaction.atomic(durable=durable):
        profile = _lock_profile(profile)
        if profile.high_profile == high_profile:
            return profile
        profile.high_profile = high_profile
        profile.save(update_fields=["high_profile"])
        record_entry(profile=profile, action=Action.HIGH_PROFILE, actor=actor, detail="on" if high_profile else "off")
    return profile


def do_set_access_rule(
    profession: Profession, document_type: DocumentType, may_read: bool, *, actor: Actor, durable: bool = True
) -> AccessRule:
    """A2: staff change one cell of the matrix; traced in the national chain."""
    if not is_staff(actor):
        raise _not_allowed()
    with transaction.atomic(durable=durable):
        rule = AccessRule.objects.select_for_update().filter(profession=profession, document_type=document_type).first()
        if rule is None:
            rule = AccessRule.objects.create(profession=profession, document_type=document_type, may_read=may_read)
        elif rule.may_read == may_read:
            return rule
        else:
            rule.may_read = may_read
            rule.save(update_fields=["may_read"])
        record_entry(
            profile=None,
            action=Action.ACCESS_RULE,
            actor=actor,
            detail=f"{profession.code}x{document_type.code}={'read' if may_read else 'deny'}",
        )
    return rule


def do_review_access(review: Review, *, actor: Actor, comment: str = "") -> Review:
    """A7, A13: staff mark an emergency or high-profile access as reviewed."""
    if not is_staff(actor):
        raise _not_allowed()
    with transaction.atomic(durable=True):
        review = Review.objects.select_for_update().get(pk=review.pk, profile_id=review.profile_id)
        if review.reviewed_at is not None:
            raise _refuse(_("Cet accès a déjà été revu."), "already_reviewed")
        review.reviewed_at = timezone.now()
        review.reviewed_by = actor
        review.comment = comment
        review.save(update_fields=["reviewed_at", "reviewed_by", "comment"])
        record_entry(profile=review.profile, action=Action.REVIEW, actor=actor, detail=f"review:{review.pk}")
    return review
