"""Actions of the patient portal on the patient's own account and preferences (N2, N7, T1).

Like every action (docs/conventions.md, Writes are actions): explicit actor, own durable transaction, the changed row
locked, a trail entry in the same transaction, the changed object returned. The lifecycle actions stay in
``records.actions`` and the access-control ones in ``access_control.actions``; this module holds what only the
portal does: notice preferences, the verified e-mail, and the trail entries of what the patient reads or exports.
"""

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _

from access_control.models import TrailEntry
from access_control.rules import Action, Reason
from access_control.trail import record_entry

from .actors import Actor, speaks_for
from .models import Document, Profile, User


class PortalAction(models.TextChoices):
    """Trail ``action`` values written by the portal (T1)."""

    NOTICE_PREFERENCES = "notice_preferences", _("Préférences d'avis")  # N2, N7
    EMAIL_VERIFIED = "email_verified", _("Adresse électronique vérifiée")  # N2
    EXPORT = "export_record", _("Téléchargement de toutes les données")  # T1
    FRANCECONNECT_LINKED = "franceconnect_linked", _("Connexion par FranceConnect activée")  # T1, issue 17
    FRANCECONNECT_UNLINKED = "franceconnect_unlinked", _("Connexion par FranceConnect retirée")  # T1, issue 17


class PreferenceRefused(ValidationError):
    """A preference that cannot be chosen (e-mail without a verified address). Nothing was changed."""


def _lock(profile: Profile) -> Profile:
    """The profile's row locked, alone (one shard on Citus); its legal representative is read on first use."""
    return Profile.objects.select_for_update().get(pk=profile.pk)


def _require(profile: Profile, actor: Actor) -> None:
    if not speaks_for(profile, actor):
        raise PreferenceRefused(
            _("Vous n'êtes pas autorisé à effectuer cette opération sur ce profil."), code="actor_not_allowed"
        )


def email_channel_possible(profile: Profile) -> bool:
    """N2: notices go by e-mail only to an activated profile with a verified address."""
    return profile.state == Profile.State.ACTIVE and bool(profile.email) and profile.email_verified


def do_set_notice_preferences(profile: Profile, *, channel: str, new_document_notices: bool, actor: Actor) -> Profile:
    """N2, N7: e-mail or post, and whether new documents are announced. Consultation notices (N1) always go."""
    if channel not in Profile.Channel.values:
        raise PreferenceRefused(_("Choisissez le courriel ou le courrier postal."), code="channel_unknown")
    with transaction.atomic(durable=True):
        profile = _lock(profile)
        _require(profile, actor)
        if channel == Profile.Channel.EMAIL and not email_channel_possible(profile):
            raise PreferenceRefused(
                _("Les avis ne peuvent être envoyés par courriel qu'à une adresse vérifiée."),
                code="email_not_verified",
            )
        if profile.preferred_channel == channel and profile.new_document_notices == new_document_notices:
            return profile
        profile.preferred_channel = channel
        profile.new_document_notices = new_document_notices
        profile.save(update_fields=["preferred_channel", "new_document_notices"])
        record_entry(
            profile=profile,
            action=PortalAction.NOTICE_PREFERENCES,
            actor=actor,
            detail=f"channel={channel},new_documents={'on' if new_document_notices else 'off'}",
        )
    return profile


def do_set_verified_email(profile: Profile, email: str, *, actor: Actor) -> Profile:
    """N2: the holder proved they read this address (a code sent to it); it becomes the account's address."""
    validate_email(email)
    with transaction.atomic(durable=True):
        profile = _lock(profile)
        if profile.user_id is None or profile.user_id != getattr(actor, "pk", None):
            raise PreferenceRefused(
                _("Seul le titulaire peut changer l'adresse électronique de son compte."), code="actor_not_allowed"
            )
        if profile.email == email and profile.email_verified:
            return profile
        profile.email = email
        profile.email_verified = True
        profile.save(update_fields=["email", "email_verified"])
        User.objects.filter(pk=profile.user_id).update(email=email)
        # The address itself is personal data: the trail says that it was verified, not which it is.
        record_entry(profile=profile, action=PortalAction.EMAIL_VERIFIED, actor=actor)
    return profile


def do_trace_patient_read(
    profile: Profile, document: Document, *, actor: Actor, download: bool, client_address: str | None
) -> None:
    """T1: the patient (or their representative) opened or downloaded one of the profile's documents."""
    with transaction.atomic(durable=True):
        record_entry(
            profile=profile,
            action=Action.OPEN_DOCUMENT,
            actor=actor,
            document=document,
            detail="download" if download else "view",
            client_address=client_address,
        )


def do_trace_denied_document(profile: Profile, document_id, *, actor: Actor, client_address: str | None) -> None:
    """T1: a document id that is not the patient's (forged, another record's, hidden): a denied attempt."""
    try:
        document_id = int(document_id)
    except (TypeError, ValueError):
        document_id = None
    with transaction.atomic(durable=True):
        record_entry(
            profile=profile,
            action=Action.OPEN_DOCUMENT,
            actor=actor,
            document=Document(pk=document_id) if document_id is not None else None,
            outcome=TrailEntry.Outcome.DENIED,
            reason=Reason.DOCUMENT_NOT_FOUND,
            client_address=client_address,
        )


def do_trace_export(profile: Profile, *, actor: Actor, document_count: int, client_address: str | None) -> TrailEntry:
    """T1: the patient downloaded the whole record (documents, trail, index)."""
    with transaction.atomic(durable=True):
        return record_entry(
            profile=profile,
            action=PortalAction.EXPORT,
            actor=actor,
            detail=f"documents={document_count}",
            client_address=client_address,
        )
