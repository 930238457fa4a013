"""Each hand-written statement against its plain-ORM reference, on the same rows (ADR 0005).

``access_control.fast_sql`` and ``notifications.fast_sql`` hold the only SQL written by hand; beside each
statement stands an ORM function that returns the same result. Here both run on the same data and must agree:
the door's facts query and visibility condition on the random worlds of the property test (masks, category
masks, blocks, grants of the treating doctor's rights, occupational authorisations, emergency modes and
opt-outs, profiles in every state, minors' secrets, held and deleted documents), the trail's chain tail and
INSERT on every kind of actor, the outbox's upsert in every state a notice can be found in.

On PostgreSQL (CI) the hand-written statements run. On SQLite the product runs the references themselves (the
upsert and the chain lock exist on PostgreSQL only), so there the notice comparison checks that it does.
"""
# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

import copy
import itertools
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from access_control import api
from access_control.fast_sql import (
    chain_tail_orm,
    insert_entry,
    insert_entry_orm,
    lock_chain_tail,
    practitioner_and_profile,
    practitioner_and_profile_orm,
    visibility,
    visibility_conditions,
)
from access_control.models import AccessMode, TrailEntry
from access_control.trail import new_entry, record_entry
from notifications.fast_sql import upsert_notice, upsert_notice_orm
from notifications.models import Notice
from practitioners.models import Practitioner, Profession
from records.models import Document, Profile, User
from tests.notify_fixtures import alice, bernard, claire, david, secret_document  # noqa: F401  (fixtures)
from tests.test_access_property import MODES, build_world, request_st, world_st

ROOT = Path(__file__).resolve().parent.parent
HAND_WRITTEN = re.compile(r"\.cursor\(|\bRawSQL\(|\.raw\(|\.extra\(|\bexecute\(")
# Outside the fast_sql modules, only the retention purge's switch of the append-only triggers (T4): two
# set_config / marker-row statements, off every hot path.
FENCE_EXCEPTIONS = {"access_control/trail.py": 4}
EXAMPLES = 40  # each example builds a world and asks every pair; the property test runs 150 of them


def test_hand_written_sql_lives_in_the_fast_sql_modules_only():
    """The fence (ADR 0005): in access_control and notifications, SQL is written in ``fast_sql.py`` or nowhere."""
    found = {}
    for package in ("access_control", "notifications"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            if "migrations" in path.parts or path.name == "fast_sql.py":
                continue
            count = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if HAND_WRITTEN.search(line))
            if count:
                found[name] = count
    assert found == FENCE_EXCEPTIONS
    assert HAND_WRITTEN.search("with connection.cursor() as cursor:") and HAND_WRITTEN.search("RawSQL(sql, [])")


def _values(instance, model) -> list:
    return [getattr(instance, f.attname) for f in model._meta.concrete_fields]


def _facts_seen(practitioner, profile, tail):
    """Everything ``practitioner_and_profile`` gives the door, as plain values."""
    facts = None
    if profile is not None:
        facts = (
            _values(profile, Profile),
            profile._blocked,
            profile._occupational_authorised,
            profile._profession_authorised,
            profile.treating_doctor_id and _values(profile.treating_doctor, Practitioner),
        )
    return _values(practitioner, Practitioner), _values(practitioner.profession, Profession), facts, tail


def _ordered_ids(condition_or_conditions) -> list[int]:
    conditions = condition_or_conditions if isinstance(condition_or_conditions, list) else [condition_or_conditions]
    return list(Document.objects.filter(*conditions).order_by("-deposited_at", "-pk").values_list("pk", flat=True))


@pytest.mark.django_db
@settings(max_examples=EXAMPLES)
@given(spec=world_st, data=st.data())
def test_the_facts_statement_agrees_with_the_orm__A1_A2_A3_A5_A7_T2(spec, data):
    """Actor, profession, profile, the facts of the decision and the chain's tail, while chains grow."""
    cache.clear()
    lock_chain = connection.vendor == "postgresql"  # the tail rides in the facts query on PostgreSQL only
    with transaction.atomic():
        _world, rows = build_world(spec)
        missing = max(p.pk for p in rows["profiles"]) + 1000
        for practitioner in rows["practitioners"]:
            for profile_id in [*(p.pk for p in rows["profiles"]), missing, None]:
                fast = practitioner_and_profile(practitioner.pk, profile_id, lock_chain=lock_chain)
                reference = practitioner_and_profile_orm(practitioner.pk, profile_id, lock_chain=lock_chain)
                assert _facts_seen(*fast) == _facts_seen(*reference)
                if profile_id in (missing, None):
                    continue
                # Grow the chain (an allowed or denied opening writes one entry) so later tails differ.
                mode, justification, attests = data.draw(request_st)
                api.open_record(
                    practitioner,
                    Profile(pk=profile_id),
                    mode=mode,
                    justification=justification,
                    attests_care_team=attests,
                )
        with pytest.raises(Practitioner.DoesNotExist):
            practitioner_and_profile(max(p.pk for p in rows["practitioners"]) + 1000, rows["profiles"][0].pk)
        transaction.set_rollback(True)


@pytest.mark.django_db
@settings(max_examples=EXAMPLES)
@given(spec=world_st)
def test_the_compiled_visibility_agrees_with_the_orm__A2_A3_A4_A5_A6_A7_A10_A12(spec):
    """Same documents in the same order, for every practitioner, profile and mode (slots filled per call), and the
    same through the compiled whole-record listing."""
    with transaction.atomic():
        _world, rows = build_world(spec)
        for practitioner, profile, mode in itertools.product(rows["practitioners"], rows["profiles"], MODES):
            fast = _ordered_ids(visibility(practitioner.pk, profile.pk, mode, Document.objects.db))
            reference = _ordered_ids(visibility_conditions(practitioner.pk, profile.pk, mode))
            assert fast == reference
            # The whole listing compiled once per connection (api.RecordListing): the same ids.
            assert api.visible_document_ids(practitioner, profile, mode=mode) == reference
        transaction.set_rollback(True)


# --- The trail -----------------------------------------------------------------------------------------------


def _stored(entry_id: int) -> dict:
    row = TrailEntry.objects.filter(pk=entry_id).values().get()
    del row["id"]
    return row


@pytest.mark.django_db
def test_the_chain_tail_agrees_with_the_orm__T2(alice, bernard, david):
    with transaction.atomic():
        for profile in (alice, bernard, None):
            assert lock_chain_tail(profile and profile.pk) == chain_tail_orm(profile and profile.pk)  # empty chains
        for profile in (alice, alice, bernard, None, alice):
            record_entry(profile=profile, action="open_record", actor=david)
            for chain in (alice, bernard, None):
                assert lock_chain_tail(chain and chain.pk) == chain_tail_orm(chain and chain.pk)
        assert lock_chain_tail(alice.pk)[0] == 3


@pytest.mark.django_db
def test_the_trail_insert_agrees_with_the_orm__T1_T2(alice, bernard, claire, david):
    """The same entry saved both ways stores the same row (hash and chain link included)."""
    staff = User.objects.create(username="agent", kind=User.Kind.STAFF, first_name="Agnès", last_name="Roux")
    document = secret_document(alice, claire)
    cases = [
        {"profile": alice, "action": "open_record", "actor": david, "client_address": "2001:db8:0:0:0:0:0:1"},
        {
            "profile": alice,
            "action": "open_record",
            "actor": claire,
            "mode": AccessMode.BRIS_DE_GLACE,
            "justification": "Patiente inconsciente — « urgence »",
            "client_address": "192.0.2.7",
        },
        {
            "profile": alice,
            "action": "open_document",
            "actor": david,
            "document": document,
            "outcome": "denied",
            "reason": "document_not_visible",
        },  # fmt: skip
        {"profile": bernard, "action": "mask_document", "actor": alice.user},
        {"profile": None, "action": "lookup_profile", "actor": david, "outcome": "denied", "reason": "not_found"},
        {"profile": bernard, "action": "review", "actor": staff, "detail": "vu"},
        {"profile": bernard, "action": "hold_release", "actor": None},
    ]
    with transaction.atomic():
        for case in cases:
            entry = new_entry(**case)
            stored = []
            for save in (insert_entry, insert_entry_orm):
                copied = copy.deepcopy(entry)
                with transaction.atomic():
                    saved = save(copied)
                    assert saved.pk is not None and not saved._state.adding and saved._state.db == connection.alias
                    stored.append(_stored(saved.pk))
                    transaction.set_rollback(True)
            assert stored[0] == stored[1]
            assert stored[0]["hash"] == entry.hash
            insert_entry(entry)  # the chain grows: the next case links to this one
        transaction.set_rollback(True)


# --- The outbox ----------------------------------------------------------------------------------------------

EXISTING = [None, Notice.Status.PENDING, Notice.Status.SENT, Notice.Status.FAILED, Notice.Status.UNDELIVERABLE]
ENTRY = ["none", "saved", "unsaved"]


def _outcome(function, *, key, defaults, existing, entry_kind, folded, profile, actor):
    """Run one upsert in a savepoint rolled back afterwards; what it returned and what it left in the database."""
    with transaction.atomic():
        entry = None
        if entry_kind != "none":
            entry = new_entry(profile=profile, action="open_record", actor=actor)
            if entry_kind == "saved":
                insert_entry(entry)
        notice, created, linked = function(key, defaults, trail_entry=entry, folded=folded)
        stored = Notice.objects.get(pk=notice.pk)
        links = list(stored.trail_entries.values_list("pk", flat=True))
        outcome = {
            "returned": _comparable(notice),
            "stored": _comparable(stored),
            "same_notice": existing is not None and notice.pk == existing.pk,
            "created": created,
            "linked": linked,
            "links_to_entry": sorted(pk == (entry and entry.pk) for pk in links),
            "entry_saved": entry is None or (entry.pk is not None and TrailEntry.objects.filter(pk=entry.pk).exists()),
            "recipient": notice.recipient_practitioner if created else None,
        }
        transaction.set_rollback(True)
    return outcome


def _comparable(notice: Notice) -> dict:
    """The notice's fields but its id and ``updated_at`` (the time of each run's write), which is checked apart."""
    values = dict(zip([f.attname for f in Notice._meta.concrete_fields], _values(notice, Notice), strict=True))
    assert values.pop("updated_at") is not None
    del values["id"]
    return values


@pytest.mark.django_db
@pytest.mark.parametrize("existing_status", EXISTING)
@pytest.mark.parametrize("folded", [True, False])
@pytest.mark.parametrize("entry_kind", ENTRY)
def test_the_notice_upsert_agrees_with_the_orm__N1_N3_N5(alice, claire, david, existing_status, folded, entry_kind):
    """New or found (pending, sent, failed, undeliverable), folded or not, with no, a saved or an unsaved entry."""
    fast = upsert_notice if connection.vendor == "postgresql" else upsert_notice_orm  # what the outbox runs
    now = timezone.now()
    key = f"consultation:{alice.pk}:{david.pk}:test"
    defaults = {
        "kind": Notice.Kind.CONSULTATION,
        "profile": alice,
        "practitioner": david,
        "recipient_practitioner": claire if not folded else None,
        "channel": Notice.Channel.EMAIL,
        "status": Notice.Status.PENDING,
        "created_at": now,
        "deliver_after": now,
        "enqueued_at": now,
        "sealed_payload": b"sealed",
    }
    with transaction.atomic():
        existing = None
        if existing_status is not None:
            existing = Notice.objects.create(
                dedupe_key=key, **{**defaults, "status": existing_status, "created_at": now - timedelta(hours=1)}
            )
            with transaction.atomic():  # an earlier access already attached: the link must not be doubled
                existing.trail_entries.add(record_entry(profile=alice, action="open_record", actor=david))
        arguments = {"key": key, "defaults": defaults, "existing": existing, "entry_kind": entry_kind, "folded": folded}
        outcomes = [_outcome(f, profile=alice, actor=david, **arguments) for f in (fast, upsert_notice_orm)]
        transaction.set_rollback(True)
    assert outcomes[0] == outcomes[1]
    kept = (
        existing_status is None
        or not folded
        or existing_status not in (Notice.Status.FAILED, Notice.Status.UNDELIVERABLE)
    )
    assert outcomes[0]["linked"] == (entry_kind != "none" and kept)  # N1: a dead folded notice takes no new access
