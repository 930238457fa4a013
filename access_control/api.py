"""The one door to patient documents: what a given actor may find, open and see.

Practitioners: ``find_profile`` (A11) -> ``open_record`` (A1-A7, traced, notified) -> ``visible_documents``
(the listing, filtered in SQL) -> ``open_document`` (one document, traced). Patients:
``documents_visible_to_patient``, ``pending_holds_for_patient`` and ``profiles_managed_by``. Nothing else
queries ``records.Document`` for an actor (docs/conventions.md, One door; tests/test_access_contract.py).

``visible_documents`` is a pure query and does not trace: callers list a record only after an allowed
``open_record`` (which writes the trail entry and the consultation notice, T1, N1, and where the care-team
attestation, A1, or the emergency justification, A7, was given), and open a document with ``open_document``,
which requires such an opening in the same mode within ``OPENING_VALIDITY``. Every function costs a constant
number of queries, whatever the size of the record. The chain lock inside ``open_record``'s first query:
see docs/adr/0001-trail-hash-chain.md.
The statements of the hot paths (the facts of the decision with the chain's tail, the visibility condition)
are written by hand in ``access_control.fast_sql``, each beside its ORM reference: see docs/adr/0005-fast-sql.md.
"""

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, TypeAlias

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.expressions import Col
from django.db.models.lookups import Exact
from django.db.models.sql.where import AND
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.models import Notice
from notifications.outbox import queue_notice
from plumbing.sql import CompiledRows
from plumbing.throttling import count_failure, failures, hashed_key, seconds_left
from practitioners.models import Practitioner
from records.health_summary import SummaryAction, SummarySections, current_entries, sections_of
from records.identifiers import normalize_nir
from records.models import Document, HealthSummary, Profile, User
from records.nir_index import on_citus, profile_id_with_nir

from .alerts import queue_review_alert
from .fast_sql import openable_profiles, practitioner_and_profile, profiles_with_facts, visibility
from .models import AccessMode, Review, TrailEntry
from .rules import (
    EMERGENCY_MODES,
    OPEN_STATES,
    Action,
    Reason,
    RecordFacts,
    check_mode,
    message_for,
    practitioner_denial,
    profile_denial,
    record_denial,
)
from .summary_access import summary_visibility
from .trail import new_entry, record_entry, save_entry

# How long an allowed opening of a record lets the practitioner open its documents in the same mode.
OPENING_VALIDITY = timedelta(hours=12)
_LOOKUP_WINDOW_SECONDS = 3600  # A11: CARNET_LOOKUP_ATTEMPTS failed look-ups per practitioner and hour


class LookupThrottled(ValidationError):
    """Too many failed identity look-ups by this practitioner in the last hour (A11)."""

    def __init__(self, retry_after: int = _LOOKUP_WINDOW_SECONDS):
        super().__init__(
            _("Trop de recherches infructueuses : réessayez dans une heure."),
            code="lookup_throttled",
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class Decision:
    """The answer of ``open_record``. ``reason`` is for the trail; show the practitioner ``message``."""

    allowed: bool
    reason: str
    trail_entry: TrailEntry
    message: str = ""


# --- Practitioners ------------------------------------------------------------------------------------


def _fresh_practitioner(practitioner: Practitioner) -> Practitioner:
    """The actor as the database has it now (a suspension takes effect at once, A1)."""
    return Practitioner.objects.select_related("profession").get(pk=practitioner.pk)


def _facts(practitioner: Practitioner, profile: Profile) -> RecordFacts:
    # The profile's _blocked, _occupational_authorised and _profession_authorised come from fast_sql's
    # profiles_with_facts() or practitioner_and_profile(): attributes the model does not declare (ignored below).
    return RecordFacts(
        practitioner_active=practitioner.status == Practitioner.Status.ACTIVE,
        profession_authorised=profile._profession_authorised,  # type: ignore[attr-defined]
        samu_regulator=practitioner.is_samu_regulator,
        insurer_physician=practitioner.is_insurer_physician,
        occupational_physician=practitioner.is_occupational_physician,
        profile_state=profile.state,
        occupational_authorised=profile._occupational_authorised,  # type: ignore[attr-defined]
        blocked=profile._blocked,  # type: ignore[attr-defined]
        emergency_opt_out=profile.emergency_access_opt_out,
    )


def _lookup_key(practitioner_id: int) -> str:
    return f"carnet:lookup-failures:{practitioner_id}"


def _lookup_keys(practitioner_id: int, client_address: str | None) -> dict[str, int]:
    """A11's counters and their limits: per practitioner, and per client address across practitioners."""
    keys = {_lookup_key(practitioner_id): settings.CARNET_LOOKUP_ATTEMPTS}
    if client_address:
        keys[hashed_key("carnet:lookup-failures", "address", client_address)] = settings.CARNET_LOOKUP_ADDRESS_ATTEMPTS
    return keys


def _same_name(given: str, stored: str) -> bool:
    """Birth names compared without case, accents or punctuation ("Le Gall" = "LE-GALL", "Hélène" = "HELENE")."""

    def fold(value: str) -> str:
        decomposed = unicodedata.normalize("NFKD", value)
        letters = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
        return " ".join(letters.casefold().split())

    return fold(given) == fold(stored)


def _profile_with_facts_by_nir(practitioner: Practitioner, nir: str) -> Profile | None:
    """The profile holding this NIR with the facts of the decision for this practitioner, or ``None``.

    Plain PostgreSQL and SQLite: one statement on ``Profile.nir``. Citus: the NIR index's look-up (one shard, by
    the NIR), then the facts statement of ``open_record`` (``practitioner_and_profile``: ``WHERE id = <that id>``,
    its subqueries on the bound id), routed to the profile's shard; ``profiles_with_facts`` there would correlate
    on the outer row and be planned on every shard.
    """
    if not on_citus(Profile.objects.db):
        return profiles_with_facts(Profile.objects.filter(nir=nir), practitioner).first()
    profile_id = profile_id_with_nir(nir)
    if profile_id is None:
        return None
    _practitioner, profile, _tail = practitioner_and_profile(practitioner.pk, profile_id)
    return profile if profile is not None and profile.nir == nir else None


def find_profile(
    practitioner: Practitioner,
    *,
    nir: str,
    birth_date: date,
    birth_name: str | None = None,
    client_address: str | None = None,
) -> Profile | None:
    """A11: the profile with this NIR and birth date (and birth name if given) that the practitioner may open.

    ``None`` when there is none and when the practitioner may not open it, alike (no oracle, A5). Failures
    are traced (the national chain for an unknown NIR, the profile's chain otherwise) and throttled.
    """
    practitioner = _fresh_practitioner(practitioner)
    limits = _lookup_keys(practitioner.pk, client_address)
    closed = [key for key, count in failures(list(limits)).items() if count >= limits[key]]
    if closed:
        with transaction.atomic():
            record_entry(
                profile=None,
                action=Action.LOOKUP,
                actor=practitioner,
                outcome=TrailEntry.Outcome.DENIED,
                reason=Reason.LOOKUP_THROTTLED,
                client_address=client_address,
            )
        raise LookupThrottled(max(seconds_left(key, _LOOKUP_WINDOW_SECONDS) for key in closed))
    profile = _profile_with_facts_by_nir(practitioner, normalize_nir(nir or ""))
    if profile is None:
        reason = Reason.NOT_FOUND
    elif profile.birth_date != birth_date or (birth_name and not _same_name(birth_name, profile.birth_name)):
        reason = Reason.IDENTITY_MISMATCH
    else:
        facts = _facts(practitioner, profile)
        reason = practitioner_denial(facts, AccessMode.NORMAL) or profile_denial(facts, AccessMode.NORMAL)
    if not reason:
        return profile
    with transaction.atomic():
        record_entry(
            profile=profile if reason != Reason.NOT_FOUND else None,
            action=Action.LOOKUP,
            actor=practitioner,
            outcome=TrailEntry.Outcome.DENIED,
            reason=reason,
            client_address=client_address,
        )
    for key in limits:
        count_failure(key, _LOOKUP_WINDOW_SECONDS)
    return None


def open_record(
    practitioner: Practitioner,
    profile: Profile,
    *,
    mode: str = AccessMode.NORMAL,
    justification: str = "",
    attests_care_team: bool = True,
    client_address: str | None = None,
) -> Decision:
    """Decide whether the practitioner may open the record (A1-A7), trace it, and notify if allowed.

    One transaction: one trail entry (allowed or denied), then for an allowed opening the consultation
    notice (N1) or, in emergency, a notice to the patient and one to the treating doctor (N3) and a review
    row (A7); a review row too for a high-profile profile (A13).
    """
    check_mode(mode)
    justification = (justification or "").strip()
    with transaction.atomic():
        # PostgreSQL: the facts query also locks the profile's trail chain and reads its tail (T2).
        chain_locked = connections[Profile.objects.db].vendor == "postgresql"
        practitioner, current, tail = practitioner_and_profile(practitioner.pk, profile.pk, lock_chain=chain_locked)
        if current is None:  # purged meanwhile: nothing to open
            reason = Reason.PROFILE_STATE
        else:
            reason = record_denial(
                _facts(practitioner, current),
                mode,
                justification=justification,
                attests_care_team=attests_care_team,
            )
        # A purged profile's entry goes to the national chain, whose tail new_entry reads itself.
        chain: dict[str, Any] = {"tail": tail} if chain_locked and current is not None else {}
        entry = new_entry(
            profile=current,
            action=Action.OPEN_RECORD,
            actor=practitioner,
            mode=mode,
            outcome=TrailEntry.Outcome.DENIED if reason else TrailEntry.Outcome.ALLOWED,
            reason=reason,
            justification=justification,
            client_address=client_address,
            **chain,
        )
        if reason or mode in EMERGENCY_MODES:
            save_entry(entry)
        if reason:
            return Decision(allowed=False, reason=reason, trail_entry=entry, message=str(message_for(reason)))
        assert current is not None  # a purged profile was refused above (PROFILE_STATE)
        if mode in EMERGENCY_MODES:
            # N3: at once, never folded, to the patient; queue_notice queues the treating doctor's (A6) itself.
            queue_notice(current, Notice.Kind.EMERGENCY, practitioner=practitioner, trail_entry=entry)
            Review.objects.create(
                kind=Review.Kind.EMERGENCY, trail_entry=entry, profile=current, practitioner=practitioner
            )  # A7
        else:
            # N1. The notice's own statement saves the trail entry (one round trip less on PostgreSQL).
            queue_notice(current, Notice.Kind.CONSULTATION, practitioner=practitioner, trail_entry=entry)
        if current.high_profile:  # A13: listed for review, and the reviewers alerted at once (after commit)
            review = Review.objects.create(
                kind=Review.Kind.HIGH_PROFILE, trail_entry=entry, profile=current, practitioner=practitioner
            )
            queue_review_alert(review)
    return Decision(allowed=True, reason="", trail_entry=entry)


def visible_documents(
    practitioner: Practitioner, profile: Profile, *, mode: str = AccessMode.NORMAL
) -> QuerySet[Document]:
    """The documents of the record this practitioner may see in this mode, filtered in SQL, newest first.

    Precedence: profile state, forbidden actor (A3), block (A5), emergency opt-out (A7) -> matrix (A2) ->
    mask and category masks (A4, A12), which hold in emergency too, except for the document's author, the
    treating doctor (A6) and the practitioners the patient granted the treating doctor's rights (A4). Documents the patient deleted (A10) are gone. Holds (A8) and the minor's secret (A9)
    concern the patient's side only. An empty queryset when the record may not be opened.
    """
    check_mode(mode)
    listing, profile_column = _listing()
    documents = listing.all()  # a copy
    # The conditions added to the WHERE as they are: ``filter()`` would resolve them again on every call.
    documents.query.where.add(visibility(practitioner.pk, profile.pk, mode, documents.db), AND)
    # The profile's id stands in the outer WHERE as well, where Citus sees it and routes to the profile's shard.
    documents.query.where.add(Exact(profile_column, profile.pk), AND)
    return documents


@cache
def _listing() -> tuple[QuerySet[Document], Col]:
    """The listing's joins and order, and its profile column, built once (bench/README.md, access.py)."""
    documents = Document.objects.select_related("document_type", "author_practitioner__profession").order_by(
        "-deposited_at", "-pk"
    )
    return documents, Document._meta.get_field("profile").get_col(Document._meta.db_table)


class RecordListing:
    """``visible_documents`` of a whole record, its SQL compiled once per connection and mode.

    What practice software reads most. The REST and FHIR pages of an opened record without filters are read
    through one (each with its columns and the listing's total on every row), and ``visible_document_ids``
    through another; compiling the queryset anew cost about half a millisecond of Python a call (bench/README.md, access.py and api.py). ``columns`` are
    what ``values()`` reads; ``total`` names a window count of the whole listing on every row (a page and its
    total in one statement). ``reference`` is the plain queryset, whose SQL is the one kept.
    """

    _SLOTS = (-(2**62) + 29, -(2**62) + 31)  # a practitioner's and a profile's id no real row has

    def __init__(self, *columns: str, total: str | None = None):
        self.columns, self.total = columns, total
        self._compiled = CompiledRows(self.reference, *self._SLOTS)

    def reference(self, mode: str, practitioner_id: int, profile_id: int) -> QuerySet[Any]:
        """The listing as a plain queryset (``rows`` gives the same rows)."""
        documents = visible_documents(Practitioner(pk=practitioner_id), Profile(pk=profile_id), mode=mode)
        listing: QuerySet[Any] = documents.values(*self.columns)
        if self.total:
            listing = listing.annotate(**{self.total: Window(Count("*"))})
        return listing

    def rows(
        self,
        practitioner_id: int,
        profile_id: int,
        mode: str = AccessMode.NORMAL,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """``reference(...)[offset : offset + limit]`` (the whole listing without ``limit``) as ``values()`` dicts."""
        check_mode(mode)  # the mode is the key of the compiled statement: never an arbitrary one
        return self._compiled.rows(
            mode, practitioner_id, profile_id, limit=limit, offset=offset, using=Document.objects.db
        )

    def tuples(self, practitioner_id: int, profile_id: int, mode: str = AccessMode.NORMAL) -> list[Sequence[Any]]:
        """The whole listing, each row a sequence of ``columns`` (no dicts: the cheapest read)."""
        check_mode(mode)
        return self._compiled.tuples(mode, practitioner_id, profile_id, using=Document.objects.db)[1]


_DOCUMENT_IDS = RecordListing("pk")


def visible_document_ids(practitioner: Practitioner, profile: Profile, *, mode: str = AccessMode.NORMAL) -> list[int]:
    """The ids ``visible_documents`` lists, in its order (newest first), from SQL compiled once."""
    return [row[0] for row in _DOCUMENT_IDS.tuples(practitioner.pk, profile.pk, mode)]


def may_open(practitioner: Practitioner, profile: Profile, mode: str = AccessMode.NORMAL) -> bool:
    """Whether the record-level decision (``rules.record_denial`` without the request checks) allows it now."""
    return openable_profiles(practitioner.pk, mode, profile.pk).exists()


def has_current_opening(practitioner_id: int, profile_id: int, mode: str = AccessMode.NORMAL) -> bool:
    """An allowed opening of the record by this practitioner in this mode within ``OPENING_VALIDITY``.

    ``open_document`` requires one; FHIR listings reuse one rather than open the record again (T1, N1).
    """
    return current_openings(practitioner_id, profile_id, mode).exists()


def current_openings(
    practitioner_id: int, profile_id: int, mode: str = AccessMode.NORMAL, *, since: datetime | None = None
) -> QuerySet[TrailEntry]:
    """The allowed openings ``has_current_opening`` looks for: since ``since`` (default ``OPENING_VALIDITY`` ago)."""
    return TrailEntry.objects.filter(
        actor_practitioner_id=practitioner_id,
        profile_id=profile_id,
        action=Action.OPEN_RECORD,
        mode=mode,
        outcome=TrailEntry.Outcome.ALLOWED,
        at__gte=timezone.now() - OPENING_VALIDITY if since is None else since,
    )


def open_document(
    practitioner: Practitioner,
    document_id: int | str | None,
    *,
    mode: str = AccessMode.NORMAL,
    client_address: str | None = None,
    profile_id: int | None = None,
) -> Document | None:
    """One document for the practitioner, or ``None`` (unknown id, another record, invisible: alike). Traced.

    Requires an allowed ``open_record`` by this practitioner on this profile in the same mode within
    ``OPENING_VALIDITY``, and the record-level decision still holding now (a block takes effect at once).
    ``profile_id``: the record the caller opened, when it knows it; the document is then looked for in that
    record only (its one shard on Citus) instead of by its id across every record.
    """
    check_mode(mode)
    pk: int | None
    try:
        pk = int(document_id) if document_id is not None else None
    except (TypeError, ValueError):
        pk = None
    with transaction.atomic():
        if pk is None:
            profile_id = None
        elif profile_id is None:  # the document's id alone: its record is looked up first (every shard on Citus)
            profile_id = Document.objects.filter(pk=pk).values_list("profile_id", flat=True).first()
        # One statement reads the document in its record, whether the practitioner sees it and whether the record
        # is opened (one shard on Citus); absent from that record, it is an unknown id.
        candidate = (
            None if pk is None or profile_id is None else _document_in_record(practitioner, pk, profile_id, mode)
        )
        if candidate is None:
            profile_id = None
        # PostgreSQL: the facts query also locks the trail chain the entry joins and reads its tail (T2).
        chain_locked = connections[Profile.objects.db].vendor == "postgresql"
        practitioner, profile, tail = practitioner_and_profile(practitioner.pk, profile_id, lock_chain=chain_locked)
        document = None
        if profile is None or candidate is None:
            reason = Reason.DOCUMENT_NOT_FOUND
        else:
            facts = _facts(practitioner, profile)
            reason = practitioner_denial(facts, mode) or profile_denial(facts, mode)
            if not reason and not candidate._opened:  # type: ignore[attr-defined]  # annotated
                reason = Reason.RECORD_NOT_OPENED
            if not reason:
                if candidate._visible:  # type: ignore[attr-defined]  # annotated
                    document = candidate
                else:
                    reason = Reason.DOCUMENT_NOT_VISIBLE
        # The tail read is that of the entry's chain; without a profile (unknown document, or its profile vanished
        # meanwhile) the entry joins the national chain, whose tail record_entry reads itself.
        chain: dict[str, Any] = {"tail": tail} if chain_locked and profile is not None else {}
        record_entry(
            profile=profile,
            action=Action.OPEN_DOCUMENT,
            actor=practitioner,
            document=document or (Document(pk=pk) if pk is not None else None),
            mode=mode,
            outcome=TrailEntry.Outcome.DENIED if reason else TrailEntry.Outcome.ALLOWED,
            reason=reason,
            client_address=client_address,
            **chain,
        )
    return document


def _document_in_record(practitioner: Practitioner, pk: int, profile_id: int, mode: str) -> Document | None:
    """The document ``pk`` of this record (``None`` if it has no such document), as ``visible_documents`` loads it.

    Annotated ``_visible`` (``visible_documents`` would list it) and ``_opened`` (``has_current_opening``): one
    statement where the reads were three, named by the profile's id throughout (one shard on Citus).
    """
    documents = Document.objects.filter(profile_id=profile_id, pk=pk)
    return (
        documents.select_related("document_type", "author_practitioner__profession")
        .annotate(
            _visible=visibility(practitioner.pk, profile_id, mode, documents.db),
            _opened=Exists(current_openings(practitioner.pk, profile_id, mode)),
        )
        .first()
    )


def health_summary_for_practitioner(
    practitioner: Practitioner,
    profile: Profile,
    *,
    mode: str = AccessMode.NORMAL,
    client_address: str | None = None,
) -> SummarySections | None:
    """The patient's health summary as this practitioner may read it in this mode, or ``None`` (invisible or absent).

    Read under the rules of a patient-deposited synthesis (``access_control.summary_access``), after an allowed
    ``open_record`` in the same mode within ``OPENING_VALIDITY``. The first reading within an opening is traced
    (T1); later ones within the same opening add nothing, nor does a summary with no line. No notice: the
    opening of the record gave it (N1, N3). Two queries (one without a summary), plus the trail entry.
    """
    check_mode(mode)
    openings = TrailEntry.objects.filter(
        actor_practitioner_id=practitioner.pk,
        profile_id=profile.pk,
        action=Action.OPEN_RECORD,
        mode=mode,
        outcome=TrailEntry.Outcome.ALLOWED,
        at__gte=timezone.now() - OPENING_VALIDITY,
    ).order_by("-at")
    reads = TrailEntry.objects.filter(
        actor_practitioner_id=practitioner.pk,
        profile_id=profile.pk,
        action=SummaryAction.READ,
        at__gte=OuterRef("_opened_at"),
    )
    summary = (
        HealthSummary.objects.filter(*summary_visibility(practitioner.pk, profile.pk, mode))
        .annotate(_opened_at=Subquery(openings.values("at")[:1]))
        .filter(_opened_at__isnull=False)
        .annotate(_read=Exists(reads))
        .first()
    )
    if summary is None:
        return None
    entries = list(current_entries(profile.pk))
    if entries and not summary._read:  # annotated above
        with transaction.atomic():
            record_entry(
                profile=profile,
                action=SummaryAction.READ,
                actor=practitioner,
                mode=mode,
                client_address=client_address,
            )
    return sections_of(summary, entries)


RECENT_PATIENTS = 8
RECENT_SCAN = 200  # the practitioner's latest openings looked at for distinct patients


def recent_patients(practitioner: Practitioner, limit: int = RECENT_PATIENTS) -> list[Profile]:
    """The patients this practitioner opened lately and may still open now, newest first (issue 18); two queries.

    From the practitioner's own allowed openings (T3): they already know these profiles. A profile they may no
    longer open (blocked since, closed, profession no longer authorised…) drops out of the list, as it would
    from a look-up (A5, A11).
    """
    recent = (
        TrailEntry.objects.filter(
            actor_practitioner_id=practitioner.pk, action=Action.OPEN_RECORD, outcome=TrailEntry.Outcome.ALLOWED
        )
        .order_by("-at", "-id")
        .values_list("profile_id", flat=True)[:RECENT_SCAN]
    )
    ids = list(dict.fromkeys(recent))
    openable = openable_profiles(practitioner.pk, AccessMode.NORMAL).filter(pk__in=ids)
    profiles = {
        profile.pk: profile
        for profile in openable.only("pk", "first_names", "birth_name", "usual_name", "birth_date", "sex")
    }
    return [profiles[pk] for pk in ids if pk in profiles][:limit]


def recent_patient(practitioner: Practitioner, profile_id: int) -> Profile | None:
    """One of ``recent_patients``, to open again; ``None`` for any other profile, existing or not (A5)."""
    return next((profile for profile in recent_patients(practitioner) if profile.pk == profile_id), None)


def profiles_treated_by(practitioner: Practitioner) -> QuerySet[Profile]:
    """A6: the open or active profiles whose treating doctor this practitioner is (a doctor's patient list)."""
    return Profile.objects.filter(treating_doctor_id=practitioner.pk, state__in=OPEN_STATES).order_by(
        "birth_name", "first_names", "pk"
    )


def may_see_trail(practitioner: Practitioner, profile: Profile) -> bool:
    """T3, A6: the treating doctor sees the profile's trail (other practitioners see only their own actions)."""
    return profile.treating_doctor_id == practitioner.pk and profile.state in OPEN_STATES


# --- Patients -------------------------------------------------------------------------------------------

PATIENT_STATES = OPEN_STATES  # a closed, suspended or opposed profile shows nothing (L2, L5, L7)

# Who asks on the patient's side: a request's user (an account, or anonymous) or nobody; only an authenticated
# account sees anything.
PatientSide: TypeAlias = User | AnonymousUser | None


def _patient_side(user: User, profile: Profile) -> Q:
    """The documents' condition for the account: the holder's, or a legal representative's (A9, L10).

    The representative is named by the ids of the account's own profiles, never by joining the representative's
    row to the documents (on Citus it may be on another shard). The holder's condition alone, checked in SQL,
    when the profile says the account holds it: the holder's statements then stay on the profile's shard.
    """
    holder = Q(profile__user_id=user.pk)
    if profile.user_id == user.pk:
        return holder
    own = Profile.objects.filter(user_id=user.pk).values("pk")
    return holder | Q(profile__legal_representative_id__in=own, hidden_from_representatives=False)  # A9


def documents_visible_to_patient(user: PatientSide, profile: Profile) -> QuerySet[Document]:
    """What the holder, or a legal representative (L10), sees of the record, newest first.

    Everything except documents on hold (A8: until released or past ``held_until``) and deleted own uploads
    (A10); a legal representative does not see documents under the minor's secret either (A9). Anyone else
    sees nothing. Masks (A4, A12) concern practitioners only.
    """
    if user is None or not user.is_authenticated:
        return Document.objects.none()
    side = _patient_side(user, profile)
    now = timezone.now()
    not_held = Q(held_until__isnull=True) | Q(hold_released_at__isnull=False) | Q(held_until__lte=now)  # A8
    return (
        Document.objects.filter(
            side,
            not_held,
            profile_id=profile.pk,
            profile__state__in=PATIENT_STATES,
            deleted_at__isnull=True,
        )
        .select_related("document_type", "author_practitioner__profession")
        .order_by("-deposited_at", "-pk")
    )


def pending_holds_for_patient(user: PatientSide, profile: Profile) -> QuerySet[Document]:
    """A8: the documents on hold that the holder (or a legal representative, L10) has been told about.

    The patient learns of a hold only once the 14-day reminder was sent; before that, and under the minor's
    secret for a representative (A9), nothing is said. Released holds, past ``held_until`` and deleted
    documents are not pending. For counting: the documents themselves stay hidden (``documents_visible_to_patient``).
    """
    if user is None or not user.is_authenticated:
        return Document.objects.none()
    side = _patient_side(user, profile)
    return Document.objects.filter(
        side,
        profile_id=profile.pk,
        held_until__gt=timezone.now(),
        hold_released_at__isnull=True,
        hold_reminder_sent_at__isnull=False,
        deleted_at__isnull=True,
    )


def profiles_managed_by(user: PatientSide) -> QuerySet[Profile]:
    """L10: the user's own profile and the profiles they manage as legal representative, own first."""
    if user is None or not user.is_authenticated:
        return Profile.objects.none()
    # By the representative's id, not a join to the representative's row (another shard on Citus).
    own = Profile.objects.filter(user_id=user.pk).values("pk")
    return Profile.objects.filter(Q(user_id=user.pk) | Q(legal_representative_id__in=own)).order_by(
        F("legal_representative_id").asc(nulls_first=True), "birth_date", "pk"
    )


def manages_profile(user: PatientSide, profile: Profile) -> bool:
    """The user is the profile's holder or its legal representative (L10)."""
    return profiles_managed_by(user).filter(pk=profile.pk).exists()
