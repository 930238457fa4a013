"""Writing notices into the outbox (N5) from inside an action's transaction.

``queue_notice`` picks the channel (N2), folds repeated consultations by one practitioner within the debounce
window into one notice (N1; a window whose notice failed starts a follow-up instead), queues the treating
doctor's notice for an emergency (N3, never folded), and enqueues the delivery after commit with the notice id
only. See docs/adr/0002-notice-outbox.md.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from access_control.trail import insert_statement, mark_saved, save_entry
from plumbing.sql import converted_rows

from .models import Notice

logger = logging.getLogger(__name__)

# Kinds that fold (N1); every other kind is told on its own (N3 and the lifecycle confirmations).
_FOLDED_KINDS = {Notice.Kind.CONSULTATION}


def choose_channel(profile, kind: str | None = None) -> str:
    """N2: e-mail for an activated profile with a verified e-mail that prefers it, else a postal letter.

    L1: the pre-opening notice goes by e-mail when the roster has an address for the person (it cannot have
    been verified yet: the person has no account), else by post.
    """
    from records.models import Profile

    if kind == Notice.Kind.PRE_OPENING and profile.email and profile.state == Profile.State.PENDING:
        return Notice.Channel.EMAIL
    if (
        profile.state == Profile.State.ACTIVE
        and profile.email
        and profile.email_verified
        and profile.preferred_channel == Profile.Channel.EMAIL
    ):
        return Notice.Channel.EMAIL
    if profile.postal_code and profile.city and (profile.address_street or profile.address_locality):
        return Notice.Channel.LETTER
    if profile.email and profile.email_verified:
        return Notice.Channel.EMAIL
    return Notice.Channel.NONE


def recipient_channel(profile, recipient_practitioner=None, kind: str | None = None) -> str:
    """The patient's channel (N2), or e-mail for a practitioner recipient (the treating doctor, N3)."""
    if recipient_practitioner is not None:
        return Notice.Channel.EMAIL if recipient_practitioner.email else Notice.Channel.NONE
    return choose_channel(profile, kind)


def window_start(now):
    """Start of the debounce window holding ``now``: windows are aligned on local midnight ("the same day")."""
    hours = settings.CARNET_NOTICE_DEBOUNCE_HOURS
    if hours <= 0:
        return None
    local = timezone.localtime(now)
    if 24 % hours == 0:
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + timedelta(hours=(local.hour // hours) * hours)
    window = timedelta(hours=hours)
    epoch = local.replace(year=2000, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return epoch + ((local - epoch) // window) * window


_DEAD = {Notice.Status.FAILED, Notice.Status.UNDELIVERABLE}


_upsert_sql: dict[tuple[str, bool], tuple[str, list, list]] = {}


def _upsert_statement(using: str, trail_insert: str | None) -> tuple[str, list, list]:
    """The PostgreSQL upsert of ``_get_or_create_locked``, written once per database alias and variant.

    ``trail_insert``: the statement begins with this INSERT of the trail entry (``t``) and links the notice to it.
    """
    saves_entry = trail_insert is not None
    if (using, saves_entry) not in _upsert_sql:
        quote = connections[using].ops.quote_name
        fields = [f for f in Notice._meta.concrete_fields if not f.primary_key]
        key = quote(Notice._meta.get_field("dedupe_key").column)
        # Named, not inferred from (dedupe_key): on Citus the constraint also holds the distribution column
        # (records.citus), and only its name is the same on both. PostgreSQL names a column's UNIQUE <table>_<column>_key.
        unique = quote(f"{Notice._meta.db_table}_{Notice._meta.get_field('dedupe_key').column}_key")
        through = Notice.trail_entries.through._meta
        link_columns = (quote(through.get_field("notice").column), quote(through.get_field("trailentry").column))
        returned = ", ".join(quote(f.column) for f in Notice._meta.concrete_fields)
        status = quote(Notice._meta.get_field("status").column)
        if saves_entry:  # the entry is the new row ``t``
            head, entry, entry_from, entry_exists, tail = f"WITH t AS ({trail_insert}), ", "t.id", ", t", "", "t.id"
        else:  # the entry's id is a parameter, maybe NULL
            head, entry, entry_from, entry_exists, tail = "WITH ", "%s", "", "%s::bigint IS NOT NULL AND ", "NULL"
        sql = (
            f"{head}n AS (INSERT INTO {quote(Notice._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT ON CONSTRAINT {unique} DO UPDATE SET {key} = EXCLUDED.{key} "
            f"RETURNING {returned}, (xmax = 0) AS carnet_created), "
            f"link AS (INSERT INTO {quote(through.db_table)} ({', '.join(link_columns)}) "
            f"SELECT n.id, {entry} FROM n{entry_from} WHERE {entry_exists}"
            f"(n.carnet_created OR NOT %s OR n.{status} NOT IN ({', '.join(['%s'] * len(_DEAD))})) "
            f"ON CONFLICT DO NOTHING) "
            f"SELECT {', '.join(f'n.{quote(f.column)}' for f in Notice._meta.concrete_fields)}, carnet_created, "
            f"{tail} FROM n{entry_from}"
        )
        _upsert_sql[(using, saves_entry)] = (
            sql,
            fields,
            [f.get_col(Notice._meta.db_table) for f in Notice._meta.concrete_fields],
        )
    return _upsert_sql[(using, saves_entry)]


def _get_or_create_locked(
    dedupe_key: str, defaults: dict, *, trail_entry=None, folded: bool = False
) -> tuple[Notice, bool, bool]:
    """The notice with this key, locked, created from ``defaults`` if there is none: ``(notice, created, linked)``.

    PostgreSQL: one statement — ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (the no-op update locks an
    existing row like ``select_for_update``) and, when the notice is the one ``queue_notice`` keeps (new, not
    folded, or not dead), the link to ``trail_entry`` — instead of a select, a savepoint, an insert, its release
    and the link. An unsaved ``trail_entry`` (``access_control.trail.new_entry``) is inserted by the same
    statement. Elsewhere the entry is saved first, then ``get_or_create`` runs on a locked queryset, and
    ``linked`` is False (the caller links).
    """
    using = Notice.objects.db
    connection = connections[using]
    saves_entry = trail_entry is not None and trail_entry.pk is None
    if connection.vendor != "postgresql":
        if saves_entry:
            save_entry(trail_entry)
        notice, created = Notice.objects.select_for_update().get_or_create(dedupe_key=dedupe_key, defaults=defaults)
        return notice, created, False
    trail_sql, trail_params = insert_statement(trail_entry) if saves_entry else (None, [])
    sql, fields, cols = _upsert_statement(using, trail_sql)
    notice = Notice(dedupe_key=dedupe_key, **defaults)
    params = [*trail_params, *(f.get_db_prep_save(f.pre_save(notice, True), connection) for f in fields)]
    entry_id = trail_entry.pk if trail_entry is not None else None
    if not saves_entry:
        params += [entry_id, entry_id]
    params += [folded, *sorted(_DEAD)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    *values, created, saved_entry_id = rows[0]
    if saves_entry:
        mark_saved(trail_entry, saved_entry_id)
        entry_id = saved_entry_id
    (values,) = converted_rows(using, "notifications.notice_upsert", cols, [values])
    found = Notice.from_db(using, [f.attname for f in Notice._meta.concrete_fields], values)
    if created:  # what save() leaves on a new instance: the related objects given in ``defaults``
        for name in ("profile", "practitioner", "recipient_practitioner"):
            if defaults.get(name) is not None:
                Notice._meta.get_field(name).set_cached_value(found, defaults[name])  # type: ignore[union-attr]  # FKs
    linked = entry_id is not None and (created or not folded or found.status not in _DEAD)
    return found, bool(created), linked


def queue_notice(
    profile,
    kind: str,
    *,
    practitioner=None,
    trail_entry=None,
    recipient_practitioner=None,
    sealed_payload: bytes | None = None,
    dedupe_key: str | None = None,
) -> Notice:
    """Create (or, for a repeated consultation, extend) a notice. Call inside the action's transaction.

    Returns the patient's notice (or the practitioner's when ``recipient_practitioner`` is given). For an
    emergency notice to the patient, the treating doctor's notice (N3) is queued too, with a dedupe key a
    caller queueing it explicitly would produce as well (so it is never doubled when ``trail_entry`` is given).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("queue_notice must be called inside the action's transaction (rule N5).")
    now = timezone.now()
    channel = recipient_channel(profile, recipient_practitioner, kind)
    folded = False
    if dedupe_key is None:
        window = window_start(now) if kind in _FOLDED_KINDS else None
        if window is not None and practitioner is not None and recipient_practitioner is None:
            # N1: one notice per practitioner, profile and debounce window.
            dedupe_key = f"{kind}:{profile.pk}:{practitioner.pk}:{window:%Y%m%d%H%M}"
            folded = True
        else:
            if trail_entry is not None and trail_entry.pk is None:
                save_entry(trail_entry)  # its id goes into the key
            ref = trail_entry.pk if trail_entry is not None else f"{now:%Y%m%d%H%M%S%f}"
            recipient = f"p{recipient_practitioner.pk}" if recipient_practitioner is not None else "patient"
            dedupe_key = f"{kind}:{profile.pk}:{recipient}:{ref}"
    status = Notice.Status.UNDELIVERABLE if channel == Notice.Channel.NONE else Notice.Status.PENDING
    defaults = {
        "kind": kind,
        "profile": profile,
        "practitioner": practitioner,
        "recipient_practitioner": recipient_practitioner,
        "channel": channel,
        "status": status,
        "created_at": now,
        "deliver_after": now,
        "enqueued_at": now,
        "sealed_payload": sealed_payload,
    }
    key = dedupe_key
    for follow_up in range(2, 100):
        notice, created, linked = _get_or_create_locked(key, defaults, trail_entry=trail_entry, folded=folded)
        if created or not folded or notice.status not in _DEAD:
            break
        key = f"{dedupe_key}:{follow_up}"
    if trail_entry is not None and not linked:
        notice.trail_entries.add(trail_entry)
    if created and status == Notice.Status.PENDING:
        notice_id = notice.pk
        transaction.on_commit(lambda: enqueue_delivery(notice_id))
    if kind == Notice.Kind.EMERGENCY and recipient_practitioner is None:
        doctor = profile.treating_doctor
        if doctor is not None and (practitioner is None or doctor.pk != practitioner.pk):
            queue_notice(
                profile, kind, practitioner=practitioner, trail_entry=trail_entry, recipient_practitioner=doctor
            )
    return notice


def enqueue_delivery(notice_id: int) -> None:
    """Hand the notice id to the broker. A broker failure is logged, not raised: the sweep retries (N5)."""
    from .tasks import deliver_notice

    try:
        deliver_notice.apply_async(args=[notice_id], retry=False)
    except Exception:  # the broker is down or misconfigured; the notice stays pending for the sweep
        logger.warning("Could not enqueue notice %s; the sweep will re-queue it.", notice_id, exc_info=True)
