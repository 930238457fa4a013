"""Every management command of the project, run end to end as an operator runs it: ``manage.py <command>``.

Each runs in its own process on this test database and must exit 0 with its summary line. The imports run
three ways: without progress display (``--no-progress``), with the line-per-interval display of a batch job
(stderr is a pipe) and with the one-line ``\\r`` bar of a terminal (stderr is a pseudo-terminal).
"""

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from stdnum import luhn

from records.identifiers import make_nir
from tests.notify_fixtures import test_database_url as database_url_for_subprocess
from tests.pro_fixtures import reference_data  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
# Each command runs in a process of its own that opens the test database: on SQLite it must be a file (conftest).
pytestmark = pytest.mark.worker

# Each command's summary line; a command added to the project without an entry here fails the test below.
SUMMARIES = {
    "seed_demo": r"^Demo cast ready",
    "generate_master_key": r"^k\d{8}:[A-Za-z0-9+/]{43}=$",
    "rotate_master_key": r"^Current master key: test1$",
    "open_due_profiles": r"^\d+ profile\(s\) opened\.$",
    "verify_trail": r"^Trail intact: \d+ entries, \d+ chain\(s\), 0 broken\.$",
    "demo_consultation": r"consulted record #\d+: \d+ visible documents",
    "enroll_patients": r"^3 rows: 3 enrolled, 0 already enrolled, 0 rejected; 3 pre-opening notices queued",
    "import_practitioners": r"^3 rows: 3 created, 0 updated, 0 unchanged, 0 rejected, 0 with warnings\.$",
    # Here its summary is the refusal: this database has no Citus. Its run on a cluster is in
    # tests/test_citus_cluster.py (make test-citus), idempotence included.
    "citus_distribute": r"^CommandError: .*Citus extension",
}
ROSTER_HEADER = "nir,birth_name,first_names,birth_date,sex,address_street,postal_code,city,country"
DIRECTORY_HEADER = "RPPS;title;last_name;first_name;profession_code;profession_label;specialty;address;postal_code;city"


def project_commands() -> set[str]:
    """The commands the project's own apps define (``<app>/management/commands/<name>.py``)."""
    return {
        path.stem
        for path in ROOT.glob("*/management/commands/*.py")
        if not path.stem.startswith("_") and ".venv" not in path.parts
    }


@pytest.fixture
def run(transactional_db, reference_data, tmp_path):  # noqa: F811  (the seeds a previous flush removed)
    """``run(name, *args, tty=False)`` → (exit status, stdout, stderr) of ``manage.py name args``."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(
        DATABASE_URL=database_url_for_subprocess(),
        CARNET_DEBUG="1",
        CARNET_VAR_DIR=str(tmp_path / "var"),  # file-system broker and mailbox of this test only
        CARNET_MASTER_KEY=settings.CARNET_MASTER_KEY,
        PYTHONPATH=str(ROOT),
    )

    def run_command(name: str, *args: str, tty: bool = False) -> tuple[int, str, str]:
        command = [sys.executable, "manage.py", name, *args]
        if not tty:
            result = subprocess.run(  # noqa: S603
                command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
            )
            return result.returncode, result.stdout, result.stderr
        leader, follower = pty.openpty()
        try:
            process = subprocess.Popen(  # noqa: S603
                command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=follower, text=True
            )
            os.close(follower)
            chunks = []
            while True:  # read the terminal while the command writes, until it closes its end
                try:
                    chunk = os.read(leader, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            stdout = process.stdout.read() if process.stdout else ""
            status = process.wait(timeout=300)
        finally:
            os.close(leader)
        return status, stdout, b"".join(chunks).decode("utf-8", "replace")

    return run_command


def assert_summary(name: str, status: int, stdout: str, stderr: str) -> None:
    assert status == 0, f"{name} exited {status}:\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    lines = stdout.splitlines()
    assert any(re.search(SUMMARIES[name], line) for line in lines), f"{name}: no summary line in\n{stdout}"


def roster_file(path: Path, start: int) -> Path:
    rows = [
        f"{make_nir(f'1800175{start + n:06d}')},PETIT,Bernard,1980-01-15,M,12 rue des Lilas,69003,LYON,FR"
        for n in range(3)
    ]
    path.write_text("\n".join([ROSTER_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def directory_file(path: Path, start: int) -> Path:
    rows = []
    for n in range(3):
        first10 = f"19{start + n:08d}"
        rpps = first10 + luhn.calc_check_digit(first10)
        rows.append(f"{rpps};Dr;Durand;Paul;10;Médecin;Médecine générale;3 place Bellecour;69002;LYON")
    path.write_text("\n".join([DIRECTORY_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_every_management_command_of_the_project_has_an_end_to_end_run_here():
    assert project_commands() == set(SUMMARIES)


def test_citus_distribute_refuses_a_database_without_citus(run):
    status, stdout, stderr = run("citus_distribute")
    assert status == 1 and "Traceback" not in stderr
    assert re.search(SUMMARIES["citus_distribute"], stderr), stderr


def test_every_management_command_runs_to_its_summary_and_exits_0(run, tmp_path):
    status, stdout, stderr = run("seed_demo")  # first: the others use the demo cast (staff, practitioners)
    assert_summary("seed_demo", status, stdout, stderr)
    for name, args in [
        ("generate_master_key", []),
        ("rotate_master_key", []),
        ("rotate_master_key", ["--dry-run"]),
        ("open_due_profiles", []),
        ("demo_consultation", []),
        ("verify_trail", []),
    ]:
        assert_summary(name, *run(name, *args))
    displays = [(["--no-progress"], False), ([], False), ([], True)]  # none, batch-job lines, terminal bar
    for index, (options, tty) in enumerate(displays):
        roster = roster_file(tmp_path / f"roster{index}.csv", start=index * 10)
        status, stdout, stderr = run("enroll_patients", str(roster), *options, tty=tty)
        assert_summary("enroll_patients", status, stdout, stderr)
        directory = directory_file(tmp_path / f"directory{index}.csv", start=index * 10)
        status, stdout, stderr = run(
            "import_practitioners", str(directory), "--actor", "karim.benali", *options, tty=tty
        )
        assert_summary("import_practitioners", status, stdout, stderr)
        if options:
            assert "lignes" not in stderr  # --no-progress draws nothing
        else:
            assert "100.0%" in stderr and "3 lignes" in stderr  # the bar reached the end of the file
            assert ("\r" in stderr) is tty
