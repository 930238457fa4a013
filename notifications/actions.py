"""Actions on notices: each owns its transaction, locks, and writes its trail entry (T1)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from access_control.trail import record_entry
from records.actors import Actor, is_staff
from records.models import User

from .models import Notice, PrintBatch
from .outbox import enqueue_delivery, recipient_channel


class NoticeActionError(ValidationError):
    """The notice cannot be resent in its current state, or by this actor. Nothing changed."""


def _staff(actor: Actor | None, error: type[ValidationError]) -> User:
    """The acting staff account (``records.actors.is_staff``), or the action's refusal."""
    if not is_staff(actor):
        raise error(_("Seul un agent de l'Assurance Maladie peut effectuer cette opération."), code="actor_not_allowed")
    return actor


def do_resend_notice(notice: Notice, *, actor: Actor) -> Notice:
    """Send a notice again, on the staff member ``actor``'s request (admin "resend").

    A failed or undeliverable notice goes back to ``pending`` with its channel chosen afresh (the address may
    have been corrected); a sent notice is copied into a new notice (the first stays as it was, for the
    record). A pre-opening notice that was sent no longer holds its provisional code (erased on delivery):
    the code must be re-issued instead. Returns the notice that will be delivered.
    """
    _staff(actor, NoticeActionError)
    with transaction.atomic(durable=True):
        notice = (
            Notice.objects.select_for_update(of=("self",))
            .select_related("profile", "recipient_practitioner")
            .get(pk=notice.pk, profile_id=notice.profile_id)
        )
        if notice.status in (Notice.Status.PENDING, Notice.Status.SENDING):
            raise NoticeActionError(_("Cet avis est déjà en cours d'envoi."), code="in_progress")
        now = timezone.now()
        channel = recipient_channel(notice.profile, notice.recipient_practitioner, notice.kind)
        status = Notice.Status.UNDELIVERABLE if channel == Notice.Channel.NONE else Notice.Status.PENDING
        if notice.status == Notice.Status.SENT:
            if notice.kind == Notice.Kind.PRE_OPENING:
                raise NoticeActionError(
                    _("Le code provisoire a été effacé après l'envoi : émettez un nouveau code au lieu de renvoyer."),
                    code="code_erased",
                )
            target = Notice.objects.create(
                kind=notice.kind,
                profile=notice.profile,
                practitioner_id=notice.practitioner_id,
                recipient_practitioner=notice.recipient_practitioner,
                channel=channel,
                status=status,
                dedupe_key=f"resend:{notice.pk}:{now:%Y%m%d%H%M%S%f}",
                created_at=now,
                deliver_after=now,
                enqueued_at=now,
            )
            target.trail_entries.set(notice.trail_entries.all())
        else:
            notice.channel = channel
            notice.status = status
            notice.attempts = 0
            notice.last_error = ""
            notice.deliver_after = now
            notice.enqueued_at = now
            notice.claimed_at = None
            notice.save(
                update_fields=[
                    "channel",
                    "status",
                    "attempts",
                    "last_error",
                    "deliver_after",
                    "enqueued_at",
                    "claimed_at",
                    "updated_at",
                ]
            )
            target = notice
        record_entry(profile=notice.profile, action="notice_resent", actor=actor, detail=f"notice {notice.pk}")
        if target.status == Notice.Status.PENDING:
            target_id, profile_id = target.pk, target.profile_id
            transaction.on_commit(lambda: enqueue_delivery(target_id, profile_id))
    return target


class BatchActionError(ValidationError):
    """The print batch cannot be marked handed in its current state, or by this actor. Nothing changed."""


def do_mark_batch_handed(batch: PrintBatch, *, actor: Actor) -> PrintBatch:
    """Record that the staff member ``actor`` handed a closed batch's files to the mail house (N4), once (T1)."""
    staff = _staff(actor, BatchActionError)
    with transaction.atomic(durable=True):
        batch = PrintBatch.objects.select_for_update().get(pk=batch.pk)
        if batch.status != PrintBatch.Status.CLOSED:
            raise BatchActionError(_("Seul un lot clôturé peut être remis au routeur."), code="not_closed")
        if batch.handed_at is not None:
            raise BatchActionError(_("Ce lot a déjà été remis au routeur."), code="already_handed")
        batch.handed_at = timezone.now()
        batch.handed_by = staff
        batch.save(update_fields=["handed_at", "handed_by"])
        record_entry(profile=None, action="batch_handed", actor=actor, detail=f"batch {batch.pk}")
    return batch
