"""Import of the national practitioner extract: per-line validation, RPPS Luhn warnings (I2), update in place
and idempotence, the trail of each import (T1), the command."""

import io

import pytest
from django.core.management import call_command
from stdnum import luhn

from access_control.models import TrailEntry
from access_control.trail import NATIONAL_CHAIN
from practitioners.directory import DirectoryFormatError, import_directory
from practitioners.models import Practitioner, Profession
from tests.admin_fixtures import AGENTS, SUPERVISORS, make_staff_member

pytestmark = pytest.mark.django_db

HEADER = "RPPS;title;last_name;first_name;profession_code;profession_label;specialty;address;postal_code;city"


def rpps(n: int) -> str:
    first10 = f"10{n:08d}"
    return first10 + luhn.calc_check_digit(first10)  # I2


def bad_luhn(n: int) -> str:
    good = rpps(n)
    return good[:10] + str((int(good[10]) + 1) % 10)


def row(number: str, **fields) -> str:
    values = {
        "title": "Dr",
        "last_name": "Dubois",
        "first_name": "Claire",
        "profession_code": "10",
        "profession_label": "Médecin",
        "specialty": "Médecine générale",
        "address": "3 place Bellecour",
        "postal_code": "69002",
        "city": "LYON",
        **fields,
    }
    return ";".join([number, *values.values()])


def extract(*lines, header=True, newline="\n", bom=False) -> io.BytesIO:
    data = newline.join([HEADER, *lines] if header else list(lines)) + newline
    raw = data.encode("utf-8")
    return io.BytesIO(b"\xef\xbb\xbf" + raw if bom else raw)


@pytest.fixture
def supervisor(db):
    return make_staff_member("sophie.laurent", SUPERVISORS)


def test_the_extract_creates_practitioners_with_their_profession(supervisor):
    report = import_directory(
        extract(row(rpps(1)), row(rpps(2), title="", last_name="Girard", first_name="Emma", profession_code="21")),
        actor=supervisor,
    )
    assert report.as_dict() == {
        "rows": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "warned": 0,
        "new_professions": [],
    }
    emma = Practitioner.objects.get(rpps=rpps(2))
    assert (emma.display_name, emma.profession.code, emma.status) == ("Emma Girard", "21", "active")
    assert (emma.practice_address, emma.practice_postal_code, emma.practice_city) == (
        "3 place Bellecour",
        "69002",
        "LYON",
    )


def test_reimporting_the_same_extract_changes_nothing_and_traces_nothing(supervisor):
    data = extract(*(row(rpps(n)) for n in range(1, 6))).getvalue()
    import_directory(io.BytesIO(data), actor=supervisor)
    entries = TrailEntry.objects.count()
    snapshot = list(Practitioner.objects.order_by("rpps").values())
    report = import_directory(io.BytesIO(data), actor=supervisor)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 5)
    assert list(Practitioner.objects.order_by("rpps").values()) == snapshot
    assert TrailEntry.objects.count() == entries


def test_a_new_extract_updates_in_place_and_keeps_carnet_s_own_fields(supervisor):
    from practitioners.actions import do_set_practitioner_markers, do_suspend_practitioner

    import_directory(extract(row(rpps(1))), actor=supervisor)
    claire = Practitioner.objects.get(rpps=rpps(1))
    do_set_practitioner_markers(
        claire, actor=supervisor, is_samu_regulator=True, is_occupational_physician=False, is_insurer_physician=False
    )
    do_suspend_practitioner(claire, actor=supervisor, reason="Décision de l'Ordre")
    report = import_directory(extract(row(rpps(1), last_name="Dubois-Martin", city="VILLEURBANNE")), actor=supervisor)
    assert (report.created, report.updated) == (0, 1)
    claire.refresh_from_db()
    assert (claire.pk, claire.last_name, claire.practice_city) == (claire.pk, "Dubois-Martin", "VILLEURBANNE")
    assert (claire.is_samu_regulator, claire.status) == (True, "suspended")  # not the extract's to change


def test_luhn_failures_are_imported_with_a_warning_and_bad_numbers_refused__I2(supervisor):
    report = import_directory(
        extract(row(bad_luhn(1)), row("1234567890"), row("1000517314A"), row(rpps(3))), actor=supervisor
    )
    assert (report.created, report.rejected, report.warned) == (2, 2, 1)
    assert [(w.line, w.rpps) for w in report.warnings] == [(2, bad_luhn(1))]
    assert "Luhn" in report.warnings[0].message
    assert [e.line for e in report.errors] == [3, 4]
    assert all("11 chiffres" in e.message for e in report.errors)
    assert Practitioner.objects.filter(rpps=bad_luhn(1)).exists()


def test_bad_lines_are_reported_and_never_stop_the_others(supervisor):
    report = import_directory(
        extract(
            row(rpps(1), last_name=""),  # 2
            row(rpps(2), profession_code="médecin"),  # 3
            row(rpps(3), city="x" * 81),  # 4
            row(rpps(4)) + ";extra",  # 5
            row(rpps(5)),  # 6
            row(rpps(5), first_name="Autre"),  # 7: the same RPPS twice
            row(rpps(6))[:30],  # 8: truncated
        ),
        actor=supervisor,
    )
    assert (report.created, report.rejected) == (1, 6)
    reasons = {e.line: e.message for e in report.errors}
    assert "last_name" in reasons[2]
    assert "numérique" in reasons[3]
    assert "80 caractères" in reasons[4]
    assert "11 colonnes au lieu de 10" in reasons[5]
    assert "ligne 6" in reasons[7]
    assert "tronquée" in reasons[8]


def test_bom_windows_line_endings_and_no_header_are_read(supervisor):
    report = import_directory(
        extract(row(rpps(1)), row(rpps(2)), header=False, newline="\r\n", bom=True), actor=supervisor
    )
    assert (report.created, report.rejected) == (2, 0)
    assert Practitioner.objects.get(rpps=rpps(2)).practice_city == "LYON"


def test_an_unknown_profession_is_created_with_no_reading_right__A2(supervisor):
    from access_control.models import AccessRule

    report = import_directory(
        extract(row(rpps(1), profession_code="98", profession_label="Assistant dentaire")), actor=supervisor
    )
    assert report.new_professions == ["98"]
    profession = Profession.objects.get(code="98")
    assert (profession.label_fr, profession.is_doctor) == ("Assistant dentaire", False)
    assert not AccessRule.objects.filter(profession=profession).exists()  # A2: default-deny


def test_each_import_that_changes_something_is_traced_in_the_staff_member_s_name__T1(supervisor):
    import_directory(extract(*(row(rpps(n)) for n in range(1, 4))), actor=supervisor, chunk_rows=2)
    entries = list(TrailEntry.objects.filter(profile_id=NATIONAL_CHAIN, action="directory_import").order_by("seq"))
    assert [e.detail for e in entries] == [
        "created 2, updated 0, new professions 0",
        "created 1, updated 0, new professions 0",
    ]
    assert {(e.actor_kind, e.actor_user_id) for e in entries} == {("staff", supervisor.pk)}


def test_only_staff_import_and_an_empty_file_is_refused(supervisor):
    from practitioners.actions import PractitionerActionError
    from tests.lifecycle_fixtures import make_doctor

    doctor = make_doctor()
    with pytest.raises(PractitionerActionError):
        import_directory(extract(row(rpps(1))), actor=None)
    with pytest.raises(PractitionerActionError):
        import_directory(extract(row(rpps(1))), actor=doctor)
    with pytest.raises(DirectoryFormatError):
        import_directory(io.BytesIO(b""), actor=supervisor)


def test_import_practitioners_command(tmp_path):
    make_staff_member("karim.benali", AGENTS)
    path = tmp_path / "extract.csv"
    path.write_bytes(extract(row(rpps(1)), row(bad_luhn(2)), row("12")).getvalue())
    out, err = io.StringIO(), io.StringIO()
    call_command("import_practitioners", str(path), "--actor", "karim.benali", "--no-progress", stdout=out, stderr=err)
    assert "3 rows: 2 created, 0 updated, 0 unchanged, 1 rejected, 1 with warnings." in out.getvalue()
    assert "warning: Ligne 3" in err.getvalue() and "error: Ligne 4" in err.getvalue()
    call_command("import_practitioners", str(path), "--actor", "karim.benali", "--no-progress", stdout=out, stderr=err)
    assert "0 created, 0 updated, 2 unchanged" in out.getvalue()
