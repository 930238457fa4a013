"""The trail: append-only in the database, hash-chained per profile, verified by a command (T1-T4)."""

import importlib
import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, OperationalError, connection, connections, transaction

from access_control.api import open_document, open_record
from access_control.models import AccessMode, AccessRule, TrailEntry
from access_control.queries import own_actions, trail_for_patient, trail_for_treating_doctor
from access_control.trail import GENESIS_HASH, entry_hash, purge_allowed, record_entry, verify_chain
from records.models import DocumentType
from tests.trail_fixtures import make_document, make_practitioner, make_profile

pytestmark = pytest.mark.django_db
_trail_sql = importlib.import_module("access_control.migrations.0003_trail_append_only")


def _write(profile, actor, n=1, **kwargs):
    entries = []
    for _ in range(n):
        with transaction.atomic():
            entries.append(record_entry(profile=profile, action="consult", actor=actor, **kwargs))
    return entries


@pytest.fixture
def chain():
    """A profile with a three-entry chain, a second profile with one entry, and a profile-less entry."""
    doctor = make_practitioner()
    profile, other = make_profile(), make_profile()
    entries = _write(profile, doctor, 3)
    _write(other, doctor)
    _write(None, doctor)
    return profile, entries


def _raw(sql, params=()):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


class _TriggersDisabled:
    """An attacker with superuser rights on the database: the append-only triggers are off for a moment."""

    def __enter__(self):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("ALTER TABLE access_control_trailentry DISABLE TRIGGER trailentry_append_only")
            else:
                cursor.execute("DROP TRIGGER trailentry_no_update")
                cursor.execute("DROP TRIGGER trailentry_no_delete")

    def __exit__(self, *exc):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # fire deferred foreign-key checks first
                cursor.execute("ALTER TABLE access_control_trailentry ENABLE TRIGGER trailentry_append_only")
            else:
                for sql in _trail_sql.SQLITE_INSTALL[1:]:
                    cursor.execute(sql)


def test_record_entry_chains_entries_of_one_profile__T2(chain):
    profile, entries = chain
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash
    stored = TrailEntry.objects.get(pk=entries[2].pk)
    assert entry_hash(stored) == stored.hash
    assert verify_chain(profile.pk) == []


@pytest.mark.django_db(transaction=True)
def test_record_entry_outside_a_transaction_is_refused__T1():
    with pytest.raises(RuntimeError):
        record_entry(profile=None, action="consult", actor=None)


def test_ipv6_client_address_hashes_as_stored__T2():
    profile = make_profile()
    with transaction.atomic():
        record_entry(profile=profile, action="consult", actor=None, client_address="2001:0db8:0000::0001")
    assert TrailEntry.objects.get(profile=profile).client_address == "2001:db8::1"
    assert verify_chain(profile.pk) == []


def test_update_is_refused_by_the_database__T2(chain):
    _, entries = chain
    with pytest.raises(IntegrityError, match="append-only"):
        _raw("UPDATE access_control_trailentry SET action = 'nothing' WHERE id = %s", [entries[0].pk])
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        TrailEntry.objects.filter(pk=entries[0].pk).update(justification="rewritten")
    assert TrailEntry.objects.get(pk=entries[0].pk).action == "consult"


def test_delete_is_refused_by_the_database__T2(chain):
    _, entries = chain
    with pytest.raises(IntegrityError, match="append-only"):
        _raw("DELETE FROM access_control_trailentry WHERE id = %s", [entries[1].pk])
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        TrailEntry.objects.filter(pk=entries[1].pk).delete()
    assert TrailEntry.objects.filter(pk=entries[1].pk).exists()


def test_emptying_the_table_is_refused__T2(chain):
    statement = "TRUNCATE access_control_trailentry CASCADE" if connection.vendor == "postgresql" else None
    with pytest.raises(IntegrityError, match="append-only"):
        _raw(statement or "DELETE FROM access_control_trailentry")
    assert TrailEntry.objects.count() == 5


def test_purge_allowed_lets_delete_through_only_inside_it__T4(chain):
    profile, entries = chain
    with transaction.atomic():
        with purge_allowed():
            assert _raw("DELETE FROM access_control_trailentry WHERE id = %s", [entries[0].pk]) == 1
            with pytest.raises(IntegrityError, match="append-only"):
                _raw("UPDATE access_control_trailentry SET action = 'x' WHERE id = %s", [entries[1].pk])
        with pytest.raises(IntegrityError, match="append-only"):
            _raw("DELETE FROM access_control_trailentry WHERE id = %s", [entries[1].pk])
        with purge_allowed():
            assert TrailEntry.objects.filter(profile=profile).delete()[0] == 2
    assert not TrailEntry.objects.filter(profile=profile).exists()
    assert TrailEntry.objects.count() == 2
    with pytest.raises(IntegrityError, match="append-only"):
        _raw("DELETE FROM access_control_trailentry")


@pytest.mark.django_db(transaction=True)
def test_purge_allowed_outside_a_transaction_is_refused__T4():
    with pytest.raises(RuntimeError), purge_allowed():
        pass  # pragma: no cover


def test_verify_trail_exits_zero_on_intact_chains__T2(chain):
    out = StringIO()
    call_command("verify_trail", stdout=out)
    assert "Trail intact: 5 entries, 3 chain(s), 0 broken." in out.getvalue()


def test_verify_trail_names_the_first_altered_entry__T2(chain):
    profile, entries = chain
    with _TriggersDisabled():
        _raw("UPDATE access_control_trailentry SET actor_name = 'Quelqu''un' WHERE id = %s", [entries[1].pk])
    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("verify_trail", stdout=out)
    assert failure.value.returncode == 1
    assert out.getvalue().splitlines()[0] == (
        f"BROKEN profile {profile.pk}: seq 2: content does not match its hash (entry altered)"
    )
    assert "1 broken" in str(failure.value)
    assert [(p.seq, p.kind) for p in verify_chain(profile.pk)] == [(2, "hash")]


def test_verify_trail_catches_an_altered_entry_whose_hash_was_recomputed__T2(chain):
    profile, entries = chain
    forged = TrailEntry.objects.get(pk=entries[1].pk)
    forged.action = "nothing"
    forged.hash = entry_hash(forged)
    with _TriggersDisabled():
        _raw(
            "UPDATE access_control_trailentry SET action = %s, hash = %s WHERE id = %s",
            [forged.action, forged.hash, forged.pk],
        )
    assert [(p.seq, p.kind) for p in verify_chain(profile.pk)] == [(3, "link")]
    with pytest.raises(CommandError):
        call_command("verify_trail", stdout=StringIO())


def test_verify_trail_names_the_gap_left_by_a_deleted_entry__T2(chain):
    profile, entries = chain
    with _TriggersDisabled():
        _raw("DELETE FROM access_control_trailentry WHERE id = %s", [entries[1].pk])
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_trail", stdout=out)
    assert f"BROKEN profile {profile.pk}: seq 3: expected seq 2 (missing entries)" in out.getvalue()
    assert {p.kind for p in verify_chain(profile.pk)} == {"seq", "link"}
    assert "Essai" not in out.getvalue() and "Patient" not in out.getvalue()  # ids only


def test_verify_trail_checks_one_profile_on_request__T2(chain):
    profile, _ = chain
    out = StringIO()
    call_command("verify_trail", "--profile", str(profile.pk), stdout=out)
    assert "Trail intact: 1 chain(s), 0 broken." in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_two_threads_consulting_one_profile_leave_one_valid_chain__T2():
    doctor, other_doctor, profile = make_practitioner(), make_practitioner(), make_profile()
    per_thread, errors = 50, []
    barrier = threading.Barrier(2)

    def consult(actor):
        try:
            barrier.wait()
            for _ in range(per_thread):
                _consult_once(actor)
        except Exception as exc:  # reported below, a thread cannot fail the test by itself
            errors.append(exc)
        finally:
            connections.close_all()

    def _consult_once(actor):
        # PostgreSQL: the chain's advisory lock makes the second writer wait. SQLite's in-memory test
        # database (shared cache) answers "table is locked" at once instead of waiting: retry like a client.
        for _ in range(1000):
            try:
                with transaction.atomic():
                    record_entry(profile=profile, action="consult", actor=actor)
                return
            except OperationalError:
                if connection.vendor != "sqlite":
                    raise
                time.sleep(0.001)
        raise AssertionError("SQLite stayed locked")

    threads = [threading.Thread(target=consult, args=(actor,)) for actor in (doctor, other_doctor)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seqs = list(TrailEntry.objects.filter(profile=profile).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 2 * per_thread + 1))
    assert verify_chain(profile.pk) == []
    call_command("verify_trail", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation", ["open_record", "open_document"])
def test_a_traced_read_that_waits_for_the_chain_chains_onto_the_entry_committed_meanwhile__T2(operation):
    """open_record and open_document lock the chain and read its tail in their first statement
    (carnet_trail_chain_tail): the read must come after the lock, or the waiting writer would chain onto the old
    tail (a fork, refused as a repeated position)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises write transactions: there is no chain lock to wait for")
    doctor, other_doctor, profile = make_practitioner(), make_practitioner(), make_profile()
    # Data migrations' rows do not survive an earlier transactional test's flush: make the matrix cell here.
    document_type, _ = DocumentType.objects.get_or_create(
        code="11502-2",
        defaults={"code_system": "LOINC", "label_fr": "CR de biologie", "label_en": "Lab report", "class_code": "10"},
    )
    AccessRule.objects.get_or_create(profession=other_doctor.profession, document_type=document_type)  # A2
    earlier = []
    if operation == "open_document":
        assert open_record(other_doctor, profile).allowed  # a document is opened within an opening of the record
        document = make_document(profile, doctor)
        earlier = ["open_record"]

        def read():
            return open_document(other_doctor, document.pk) is not None
    else:

        def read():
            return open_record(other_doctor, profile).allowed

    holding, release, errors, results = threading.Event(), threading.Event(), [], []

    def hold_the_chain():
        try:
            with transaction.atomic():
                record_entry(profile=profile, action="consult", actor=doctor)
                holding.set()
                release.wait(10)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def read_it():
        try:
            results.append(read())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_chain)
    holder.start()
    assert holding.wait(10)
    reader = threading.Thread(target=read_it)
    reader.start()
    reader.join(0.5)
    assert reader.is_alive(), f"{operation} did not wait for the chain's lock"
    release.set()
    holder.join(10)
    reader.join(10)
    assert errors == []
    assert results == [True]
    entries = TrailEntry.objects.filter(profile=profile).order_by("seq")
    assert list(entries.values_list("action", flat=True)) == [*earlier, "consult", operation]
    assert list(entries.values_list("seq", flat=True)) == list(range(1, len(earlier) + 3))
    assert verify_chain(profile.pk) == []


def test_patient_sees_the_whole_trail_newest_first_with_names__T3(django_assert_num_queries):
    doctor, pharmacist = make_practitioner(), make_practitioner(profession_code="21")
    profile = make_profile()
    _write(profile, doctor)
    _write(profile, pharmacist, outcome=TrailEntry.Outcome.DENIED, reason="matrix")
    _write(profile, doctor, mode=AccessMode.BRIS_DE_GLACE, justification="Inconscient aux urgences")
    _write(make_profile(), doctor)
    with django_assert_num_queries(1):
        rows = list(trail_for_patient(profile))
    assert [(e.seq, e.actor_name, e.mode) for e in rows] == [
        (3, doctor.display_name, AccessMode.BRIS_DE_GLACE),
        (2, pharmacist.display_name, AccessMode.NORMAL),
        (1, doctor.display_name, AccessMode.NORMAL),
    ]
    assert rows[1].actor_profession == pharmacist.profession.label_fr
    assert rows[1].outcome == TrailEntry.Outcome.DENIED


def test_legal_representative_does_not_see_entries_on_the_minors_secret__A9():
    doctor, minor = make_practitioner(), make_profile()
    secret = make_document(minor, doctor, hidden_from_representatives=True)
    plain = make_document(minor, doctor)
    _write(minor, doctor, document=secret)
    _write(minor, doctor, document=plain)
    _write(minor, doctor)
    seen = trail_for_patient(minor, as_legal_representative=True)
    assert [e.document_id for e in seen] == [None, plain.pk]
    assert trail_for_patient(minor).count() == 3


def test_only_the_treating_doctor_sees_the_patients_trail__A6_T3():
    treating, other = make_practitioner(), make_practitioner()
    profile = make_profile(treating_doctor=treating)
    _write(profile, other, 2)
    assert trail_for_treating_doctor(treating, profile).count() == 2
    assert trail_for_treating_doctor(other, profile).count() == 0


def test_practitioner_sees_own_actions_without_revealing_refused_profiles__T3_A5(django_assert_num_queries):
    doctor, colleague = make_practitioner(), make_practitioner()
    opened, blocked = make_profile(), make_profile()
    _write(opened, doctor)
    _write(blocked, doctor, outcome=TrailEntry.Outcome.DENIED, reason="blocked")
    _write(opened, colleague)
    with django_assert_num_queries(1):
        rows = list(own_actions(doctor)[:50])
    assert [(r["outcome"], r["shown_profile_id"]) for r in rows] == [
        (TrailEntry.Outcome.DENIED, None),
        (TrailEntry.Outcome.ALLOWED, opened.pk),
    ]
    assert "reason" not in rows[0]
