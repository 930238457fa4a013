"""Bulk enrolment from the roster (L1): validation per line, idempotence, file quirks, the same rows as
``do_enrol_profile``, notices handed to the broker after commit (N5), constant memory."""

import importlib
import io
import os
import subprocess
import sys
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path
from unittest import mock

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.forms.models import model_to_dict

from access_control.models import TrailEntry
from access_control.trail import GENESIS_HASH, NATIONAL_CHAIN, verify_chain
from notifications.models import Notice
from records import actions, crypto, enrolment, enrolment_copy, lifecycle
from records.enrolment import enrol_roster
from records.identifiers import make_nir
from records.lifecycle import ActorNotAllowed
from records.models import NirIndex, Profile
from records.nir_index import on_citus, profiles_with_nir
from records.roster import RosterFormatError
from tests.lifecycle_fixtures import enrol, enrol_active, make_staff, next_nir

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
HEADER = (
    "nir,birth_name,usual_name,first_names,birth_date,sex,birth_place_code,address_complement,address_building,"
    "address_street,address_locality,postal_code,city,country,email,representative_nir"
)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """The after-commit hand-off is tested on its own; elsewhere nothing goes to a broker."""
    sent = []
    monkeypatch.setattr(enrolment, "enqueue_notices", sent.append)
    return sent


def line(nir, **fields) -> str:
    values = {
        "nir": nir,
        "birth_name": "PETIT",
        "usual_name": "",
        "first_names": "Bernard",
        "birth_date": "1980-01-15",
        "sex": "M",
        "birth_place_code": "75056",
        "address_complement": "",
        "address_building": "",
        "address_street": "12 rue des Lilas",
        "address_locality": "",
        "postal_code": "69003",
        "city": "LYON",
        "country": "FR",
        "email": "",
        "representative_nir": "",
        **fields,
    }
    return ",".join(values[name] for name in HEADER.split(","))


def roster(*lines, newline="\n", bom=False, header=HEADER, final_newline=True) -> io.BytesIO:
    text = newline.join([header, *lines]) + (newline if final_newline else "")
    data = text.encode("utf-8")
    return io.BytesIO(b"\xef\xbb\xbf" + data if bom else data)


def test_roster_rows_become_pending_profiles_with_sealed_code_and_letter__L1(clock):
    nirs = [next_nir() for _ in range(3)]
    report = enrol_roster(roster(*(line(nir) for nir in nirs)))

    assert report.as_dict() == {
        "rows": 3,
        "created": 3,
        "already_enrolled": 0,
        "rejected": 0,
        "notices": 3,
        "undeliverable": 0,
    }
    for profile in Profile.objects.filter(nir__in=nirs):
        assert profile.state == Profile.State.PENDING
        assert profile.notice_sent_at == START
        notice = Notice.objects.get(profile=profile)
        assert (notice.kind, notice.channel, notice.status) == ("pre_opening", "letter", "pending")
        code = crypto.unseal(notice.sealed_payload).decode()
        assert lifecycle.check_provisional_code(profile, code)
        assert not lifecycle.check_provisional_code(profile, "ABCDEFGHJK")
        entry = TrailEntry.objects.get(profile_id=profile.pk)
        assert (entry.seq, entry.prev_hash, entry.action, entry.detail) == (1, GENESIS_HASH, "enrol", "->pending")
        assert list(notice.trail_entries.all()) == [entry]
        assert verify_chain(profile.pk) == []


def _comparable(instance, ignore) -> dict:
    values = model_to_dict(instance, fields=[f.name for f in instance._meta.concrete_fields])
    return {key: value for key, value in values.items() if key not in ignore}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"usual_name": "MARTIN", "email": "bernard@example.org", "address_building": "Résidence Les Pins"},
        {"address_street": "", "postal_code": "", "city": ""},  # no address: the notice is undeliverable (N2)
    ],
    ids=["plain", "all-fields", "no-address"],
)
@pytest.mark.parametrize("by_staff", [False, True], ids=["system", "staff"])
def test_bulk_rows_are_exactly_what_do_enrol_profile_writes__L1_T1_N5(clock, extra, by_staff):
    actor = make_staff() if by_staff else None
    fields = {
        "birth_name": "PETIT",
        "first_names": "Bernard",
        "birth_date": date(1980, 1, 15),
        "sex": "M",
        "birth_place_code": "75056",
        "address_street": "12 rue des Lilas",
        "postal_code": "69003",
        "city": "LYON",
        **extra,
    }
    single, _code = actions.do_enrol_profile(nir=next_nir(), actor=actor, **fields)
    bulk_nir = next_nir()
    raw = {key: str(value) for key, value in fields.items()}
    raw["birth_date"] = fields["birth_date"].isoformat()
    enrol_roster(roster(line(bulk_nir, **raw)), actor=actor)
    bulk = Profile.objects.get(nir=bulk_nir)

    ignore = {"id", "nir", "provisional_code_hash"}
    assert _comparable(bulk, ignore) == _comparable(single, ignore)
    for profile in (single, bulk):  # both codes verify with the same checker (different round counts)
        notice = Notice.objects.get(profile=profile)
        assert lifecycle.check_provisional_code(profile, crypto.unseal(notice.sealed_payload).decode())
        assert profile.provisional_code_hash.startswith("pbkdf2_sha256_code$")

    entry_ignore = {"id", "profile", "hash"}
    single_entries = list(TrailEntry.objects.filter(profile_id=single.pk).order_by("seq"))
    bulk_entries = list(TrailEntry.objects.filter(profile_id=bulk.pk).order_by("seq"))
    assert [_comparable(e, entry_ignore) for e in bulk_entries] == [
        _comparable(e, entry_ignore) for e in single_entries
    ]
    assert verify_chain(bulk.pk) == []

    notice_ignore = {"id", "profile", "dedupe_key", "sealed_payload", "updated_at"}
    single_notice, bulk_notice = Notice.objects.get(profile=single), Notice.objects.get(profile=bulk)
    assert _comparable(bulk_notice, notice_ignore) == _comparable(single_notice, notice_ignore)
    assert single_notice.dedupe_key == f"pre_opening:{single.pk}:patient:{single_entries[0].pk}"
    assert bulk_notice.dedupe_key == f"pre_opening:{bulk.pk}:patient:{bulk_entries[0].pk}"
    assert list(bulk_notice.trail_entries.all()) == [bulk_entries[0]]


def test_minor_rows_are_what_do_enrol_profile_writes_for_a_representative__L1_L10(clock):
    parent, _code = enrol(birth_date=date(1975, 5, 1))
    minor_fields = {"birth_name": "MARTIN", "first_names": "Fanny", "birth_date": date(2015, 6, 1), "sex": "F"}
    single, _code = actions.do_enrol_profile(
        nir=next_nir("2", 15, 6), legal_representative=parent, actor=None, **minor_fields
    )
    bulk_nir = next_nir("2", 15, 6)
    enrol_roster(
        roster(
            line(
                bulk_nir,
                birth_name="MARTIN",
                first_names="Fanny",
                birth_date="2015-06-01",
                sex="F",
                birth_place_code="",
                address_street="",
                postal_code="",
                city="",
                representative_nir=parent.nir,
            )
        )
    )
    bulk = Profile.objects.get(nir=bulk_nir)
    assert bulk.legal_representative_id == parent.pk
    ignore = {"id", "nir", "provisional_code_hash", "address_street", "postal_code", "city", "birth_place_code"}
    assert _comparable(bulk, ignore) == _comparable(single, ignore)
    trail = [(e.seq, e.action, e.detail) for e in TrailEntry.objects.filter(profile_id=bulk.pk).order_by("seq")]
    assert trail == [(1, "enrol", "->pending"), (2, "legal_representative", "set")]
    assert trail == [
        (e.seq, e.action, e.detail) for e in TrailEntry.objects.filter(profile_id=single.pk).order_by("seq")
    ]
    assert verify_chain(bulk.pk) == []


def test_bad_rows_are_reported_per_line_and_never_stop_the_good_ones__L1_I1(clock):
    good = [next_nir() for _ in range(2)]
    bad_key = next_nir()[:13] + "00"
    lines = [
        line(good[0]),  # line 2
        line(bad_key),  # 3
        line(next_nir(), birth_date="15/01/1980"),  # 4
        line(next_nir(), birth_date="2030-01-01"),  # 5
        line(next_nir(), birth_date="1980-02-30"),  # 6
        line(next_nir(), address_street="x" * 39),  # 7
        line(next_nir(), sex="X"),  # 8
        line(next_nir(), first_names=""),  # 9
        line(next_nir(), email="not-an-address"),  # 10
        line(next_nir(), country="France"),  # 11
        line(good[1]),  # 12
    ]
    report = enrol_roster(roster(*lines))

    assert (report.created, report.rejected) == (2, 9)
    reasons = {error.line: error.reason for error in report.errors}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "clé du NIR" in reasons[3]
    assert "AAAA-MM-JJ" in reasons[4]
    assert "futur" in reasons[5]
    assert "n'existe pas" in reasons[6]
    assert "38 caractères (39)" in reasons[7]
    assert "M ou F" in reasons[8]
    assert "obligatoire" in reasons[9]
    assert "courriel" in reasons[10].lower()
    assert "ISO 3166" in reasons[11]
    assert set(Profile.objects.values_list("nir", flat=True)) == set(good)
    assert not any(nir in str(error) for error in report.errors for nir in good)  # no patient data in errors


def test_corsican_nirs_2a_and_2b_are_enrolled_and_checked__I1(clock):
    corsica_a = make_nir("180012A001001")
    corsica_b = make_nir("280012B001002")
    wrong = corsica_a[:13] + f"{(int(corsica_a[13:]) + 1) % 100:02d}"
    report = enrol_roster(roster(line(corsica_a.lower()), line(corsica_b, sex="F"), line(wrong)))
    assert (report.created, report.rejected) == (2, 1)
    assert set(Profile.objects.values_list("nir", flat=True)) == {corsica_a, corsica_b}
    assert "clé du NIR" in report.errors[0].reason


def _shard_of(profile: Profile) -> int | None:
    """The Citus shard holding the profile's row (None off Citus)."""
    if not on_citus():
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT get_shard_id_for_distribution_column('records_profile', %s)", [profile.pk])
        return cursor.fetchone()[0]


def test_bulk_enrolled_persons_are_found_by_nir_and_a_duplicate_nir_is_refused_across_shards__I1(clock):
    """The COPY path writes the NIR index (I1): on Citus, where profiles are sharded by id and the index by NIR,
    the look-up by NIR reads the index, and the index's key holds each NIR for one profile in the country."""
    nirs = [next_nir() for _ in range(8)]
    assert enrol_roster(roster(*(line(nir) for nir in nirs))).created == 8
    profiles = {profile.nir: profile for profile in Profile.objects.filter(nir__in=nirs)}

    indexed = dict(NirIndex.objects.filter(nir__in=nirs).values_list("nir", "profile_id"))
    assert indexed == {nir: profile.pk for nir, profile in profiles.items()}
    for nir, profile in profiles.items():
        assert list(profiles_with_nir(nir)) == [profile]

    # Enrolling one of them again, one by one, finds the bulk-enrolled profile and creates nothing.
    first = profiles[nirs[0]]
    assert enrol(nir=nirs[0]) == (first, None)
    assert Profile.objects.filter(nir=nirs[0]).count() == 1
    # The index refuses that NIR for a profile on another shard (any other profile off Citus).
    other = next(p for p in profiles.values() if p != first and (_shard_of(p) != _shard_of(first) or not on_citus()))
    with pytest.raises(IntegrityError), transaction.atomic():
        NirIndex.objects.create(nir=nirs[0], profile=other)
    assert NirIndex.objects.get(nir=nirs[0]).profile_id == first.pk


def test_running_the_same_file_twice_creates_nothing_the_second_time__L1(clock):
    data = roster(*(line(next_nir()) for _ in range(5))).getvalue()
    first = enrol_roster(io.BytesIO(data))
    counts = (Profile.objects.count(), TrailEntry.objects.count(), Notice.objects.count())
    second = enrol_roster(io.BytesIO(data))
    assert (first.created, second.created, second.already_enrolled, second.notices) == (5, 0, 5, 0)
    assert (Profile.objects.count(), TrailEntry.objects.count(), Notice.objects.count()) == counts


def test_a_row_repeated_in_the_file_enrols_one_profile__L1(clock):
    nir = next_nir()
    report = enrol_roster(roster(line(nir), line(next_nir()), line(nir, first_names="Bernard Jean")))
    assert (report.created, report.already_enrolled) == (2, 1)
    assert Profile.objects.get(nir=nir).first_names == "Bernard"


def test_a_row_repeated_across_chunks_enrols_one_profile__L1(clock):
    nir = next_nir()
    report = enrol_roster(roster(line(nir), line(next_nir()), line(nir)), chunk_rows=1)
    assert (report.created, report.already_enrolled) == (2, 1)


def test_bom_windows_line_endings_and_semicolons_are_read__L1(clock):
    nirs = [next_nir() for _ in range(2)]
    data = roster(
        *(line(nir).replace(",", ";") for nir in nirs), newline="\r\n", bom=True, header=HEADER.replace(",", ";")
    )
    report = enrol_roster(data)
    assert (report.created, report.rejected) == (2, 0)
    profile = Profile.objects.get(nir=nirs[1])
    assert (profile.city, profile.first_names) == ("LYON", "Bernard")  # no "\r" left on the last column


def test_a_truncated_last_line_is_reported_and_the_rest_loads__L1(clock):
    complete = [next_nir() for _ in range(2)]
    cut = line(next_nir())[:40]  # the transfer stopped in the middle of the row
    report = enrol_roster(roster(*(line(nir) for nir in complete), cut, final_newline=False))
    assert (report.created, report.rejected) == (2, 1)
    assert report.errors[0].line == 4
    assert "tronquée" in report.errors[0].reason


def test_a_truncated_last_line_inside_quotes_is_reported__L1(clock):
    nir = next_nir()
    data = roster(line(nir), line(next_nir(), address_street='"12 rue des'), final_newline=False)
    report = enrol_roster(data)
    assert (report.created, report.rejected) == (1, 1)
    assert report.errors[0].line == 3


def test_bytes_that_are_not_utf8_refuse_their_row_only__L1(clock):
    good = next_nir()
    data = roster(line(good), line(next_nir(), birth_name="PETIT")).getvalue()
    data = data.replace(b"PETIT", b"P\xc9TIT", 2).replace(b"P\xc9TIT", b"PETIT", 1)
    report = enrol_roster(io.BytesIO(data))
    assert (report.created, report.rejected) == (1, 1)
    assert "UTF-8" in report.errors[0].reason


def test_a_file_without_the_required_columns_is_refused_whole__L1(clock):
    with pytest.raises(RosterFormatError, match="birth_date"):
        enrol_roster(io.BytesIO(b"nir,birth_name,first_names,sex\n"))
    with pytest.raises(RosterFormatError):
        enrol_roster(io.BytesIO(b""))
    assert not Profile.objects.exists()


def test_optional_columns_may_be_left_out__L1(clock):
    nir = next_nir()
    data = io.BytesIO(f"nir;birth_name;first_names;birth_date;sex\n{nir};PETIT;Bernard;1980-01-15;m\n".encode())
    report = enrol_roster(data)
    assert report.created == 1
    profile = Profile.objects.get(nir=nir)
    assert (profile.sex, profile.country, profile.email) == ("M", "FR", "")
    assert Notice.objects.get(profile=profile).status == Notice.Status.UNDELIVERABLE  # no address at all (N2)


def test_minors_get_their_legal_representative_from_the_file_or_the_database__L10(clock):
    known_parent, _code = enrol(birth_date=date(1975, 5, 1))
    new_parent = next_nir("2", 78, 3)
    minor_kwargs = {"birth_date": "2014-09-01", "first_names": "Fanny"}
    rows = [
        line(next_nir("2", 14, 9), representative_nir=known_parent.nir, **minor_kwargs),  # 2: parent in the database
        line(next_nir("2", 14, 9), representative_nir=new_parent, **minor_kwargs),  # 3: parent later in the chunk
        line(new_parent, birth_date="1978-03-10", sex="F"),  # 4
        line(next_nir("2", 14, 9), representative_nir=next_nir(), **minor_kwargs),  # 5: unknown representative
        line(next_nir(), representative_nir=known_parent.nir),  # 6: an adult cannot have one
        line(next_nir("2", 14, 9), representative_nir=next_nir("2", 12, 1), **minor_kwargs),  # 7: unknown
    ]
    report = enrol_roster(roster(*rows))
    assert (report.created, report.rejected) == (3, 3)
    reasons = {error.line: error.reason for error in report.errors}
    assert sorted(reasons) == [5, 6, 7]
    assert "inconnu" in reasons[5]
    assert "mineur" in reasons[6]
    # Two queries, not a join: on Citus a minor and their representative may sit on different shards.
    minors = Profile.objects.filter(legal_representative__isnull=False)
    representatives = Profile.objects.filter(pk__in=[m.legal_representative_id for m in minors])
    assert sorted(representatives.values_list("nir", flat=True)) == sorted([known_parent.nir, new_parent])
    for minor in minors:
        assert verify_chain(minor.pk) == []


def test_a_minor_may_come_chunks_before_the_representative__L10(clock):
    parent = next_nir("2", 78, 3)
    minor = next_nir("2", 14, 9)
    rows = [
        line(minor, birth_date="2014-09-01", representative_nir=parent),
        line(next_nir()),
        line(parent, birth_date="1978-03-10", sex="F"),
    ]
    report = enrol_roster(roster(*rows), chunk_rows=1)
    assert (report.created, report.rejected) == (3, 0)
    assert Profile.objects.get(nir=minor).legal_representative.nir == parent


def test_a_minor_cannot_represent_a_minor__L10(clock):
    older_minor = next_nir("1", 10, 1)
    report = enrol_roster(
        roster(
            line(older_minor, birth_date="2010-01-01"),
            line(next_nir("2", 14, 9), birth_date="2014-09-01", representative_nir=older_minor),
        )
    )
    assert (report.created, report.rejected) == (1, 1)
    assert "majeur" in report.errors[0].reason


def test_only_the_system_or_staff_may_enrol__L1(clock):
    _profile, user = enrol_active()
    with pytest.raises(ActorNotAllowed):
        enrol_roster(roster(line(next_nir())), actor=user)


def test_staff_enrolment_is_traced_in_their_name__L1_T1(clock):
    karim = make_staff()
    nir = next_nir()
    enrol_roster(roster(line(nir)), actor=karim)
    entry = TrailEntry.objects.get(profile__nir=nir)
    assert (entry.actor_kind, entry.actor_user_id, entry.actor_name) == ("staff", karim.pk, "Karim Benali")


def test_pending_notices_go_to_the_broker_after_commit_in_batches__N5(
    clock, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.undo()  # the real enqueue_notices, with the task's apply_async replaced
    monkeypatch.setattr(enrolment, "ENQUEUE_BATCH", 2)
    sent = []
    monkeypatch.setattr(enrolment.enqueue_enrolment_notices, "apply_async", lambda args, retry: sent.append(args[0]))
    lines = [line(next_nir()) for _ in range(3)] + [line(next_nir(), address_street="", postal_code="", city="")]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        enrol_roster(roster(*lines), chunk_rows=10)
        assert sent == []  # nothing before the commit
    assert len(callbacks) == 1
    pending = list(Notice.objects.filter(status="pending").order_by("pk").values_list("pk", flat=True))
    assert [notice_id for batch in sent for notice_id in batch] == pending
    assert [len(batch) for batch in sent] == [2, 1]  # the undeliverable one is not sent


def test_a_broker_failure_leaves_the_notices_pending_for_the_sweep__N5(
    clock, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.undo()

    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(enrolment.enqueue_enrolment_notices, "apply_async", broken)
    with django_capture_on_commit_callbacks(execute=True):
        report = enrol_roster(roster(line(next_nir())))
    assert report.created == 1
    assert Notice.objects.get().status == Notice.Status.PENDING


def test_the_batch_task_hands_each_notice_to_delivery__N5(clock, monkeypatch):
    handed = []
    monkeypatch.setattr("notifications.outbox.enqueue_delivery", handed.append)
    assert enrolment.enqueue_enrolment_notices([3, 5, 8]) == 3
    assert handed == [3, 5, 8]


def test_a_chunk_hit_by_a_concurrent_enrolment_is_retried_whole__L1(clock, monkeypatch):
    original = enrolment_copy.write_chunk
    calls = []

    def racing(rows, **kwargs):
        calls.append(len(rows))
        if len(calls) == 1:
            original(rows, **kwargs)
            raise IntegrityError("duplicate key value violates unique constraint")
        return original(rows, **kwargs)

    monkeypatch.setattr(enrolment_copy, "write_chunk", racing)
    report = enrol_roster(roster(line(next_nir()), line(next_nir())))
    assert calls == [2, 2]
    assert report.created == 2
    assert Profile.objects.count() == 2 and Notice.objects.count() == 2 and TrailEntry.objects.count() == 2


def write_roster_file(path, rows: int, start: int = 0) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER + "\n")
        for n in range(start, start + rows):
            nir = make_nir(f"1{80 + n % 20:02d}{1 + n % 12:02d}75{n // 1000 % 1000:03d}{n % 1000:03d}")
            handle.write(line(nir) + "\n")


def _peak(path) -> tuple[int, enrolment.EnrolmentReport]:
    tracemalloc.start()
    try:
        with open(path, "rb") as fileobj:
            report = enrol_roster(fileobj, chunk_rows=2000)
        return tracemalloc.get_traced_memory()[1], report
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("rows", [50_000])
def test_a_50000_row_file_loads_in_constant_memory__L1(clock, tmp_path, rows, capsys):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    write_roster_file(small, 5_000, start=0)
    write_roster_file(large, rows, start=100_000)
    small_peak, small_report = _peak(small)
    large_peak, large_report = _peak(large)
    assert (small_report.created, large_report.created) == (5_000, rows)
    with capsys.disabled():
        print(
            f"\nenrolment peak traced memory: 5 000 rows {small_peak / 2**20:.1f} MiB, {rows} rows {large_peak / 2**20:.1f} MiB"
        )
    # Ten times the rows, the same chunk: the peak is the chunk's, not the file's.
    assert large_peak < small_peak * 1.5 + 2 * 2**20
    assert large_peak < 64 * 2**20


def test_enroll_patients_command_reports_and_writes_the_rejected_lines__L1(clock, tmp_path):
    path, errors = tmp_path / "roster.csv", tmp_path / "errors.csv"
    path.write_bytes(roster(line(next_nir()), line("123"), line(next_nir())).getvalue())
    out = io.StringIO()
    call_command("enroll_patients", str(path), "--errors", str(errors), "--no-progress", stdout=out)
    assert "3 rows: 2 enrolled, 0 already enrolled, 1 rejected" in out.getvalue()
    assert errors.read_text(encoding="utf-8").splitlines()[1].startswith("3;")
    command = importlib.import_module("records.management.commands.enroll_patients")
    with mock.patch.object(command, "enrol_roster", wraps=enrol_roster) as spy:
        call_command("enroll_patients", str(path), "--actor", make_staff().username, "--no-progress", stdout=out)
    assert spy.call_args.kwargs["actor"].username == "karim.benali"


@pytest.mark.django_db(transaction=True)
def test_parallel_workers_load_the_same_rows_and_catch_repeats_across_chunks__L1_L10(tmp_path):
    """On PostgreSQL two processes load chunks side by side; elsewhere the same call runs serially."""
    path = tmp_path / "roster.csv"
    write_roster_file(path, 1_200, start=300_000)
    repeated = make_nir(f"1{80 + 300_001 % 20:02d}{1 + 300_001 % 12:02d}75300001")  # also in the first chunk
    parent, minor = next_nir("2", 78, 3), next_nir("2", 14, 9)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line(repeated) + "\n")
        handle.write(line(minor, birth_date="2014-09-01", representative_nir=parent) + "\n")
        for _ in range(150):  # the representative comes a chunk or two later
            handle.write(line(next_nir()) + "\n")
        handle.write(line(parent, birth_date="1978-03-10", sex="F") + "\n")
    if connection.vendor == "postgresql":
        # The loader forks only from a single-threaded process: run the command as its own process.
        output = _enroll_in_subprocess(path, tmp_path, workers=2)
        assert "1353 rows: 1352 enrolled, 1 already enrolled, 0 rejected" in output
    else:
        with open(path, "rb") as fileobj:
            report = enrol_roster(fileobj, chunk_rows=100, workers=2)
        assert (report.rows, report.created, report.already_enrolled, report.rejected) == (1_353, 1_352, 1, 0)
    assert Profile.objects.count() == 1_352 and Notice.objects.count() == 1_352
    assert TrailEntry.objects.exclude(profile_id=NATIONAL_CHAIN).count() == 1_353  # the minor's second entry (L10)
    assert Profile.objects.get(nir=minor).legal_representative.nir == parent
    assert all(not verify_chain(pk) for pk in Profile.objects.values_list("pk", flat=True)[:50])


def _enroll_in_subprocess(path, var_dir, *, workers: int) -> str:
    """``manage.py enroll_patients`` on this test database, in a fresh single-threaded process."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(
        DATABASE_URL=url,
        CARNET_DEBUG="1",
        CARNET_VAR_DIR=str(var_dir),
        CARNET_MASTER_KEY=settings.CARNET_MASTER_KEY,
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "enroll_patients", str(path), "--no-progress", "--chunk-size", "100",
         "--workers", str(workers)],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
