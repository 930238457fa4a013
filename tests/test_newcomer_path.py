"""The path of someone trying Carnet for the first time: `make run`, its printout, the demo's examples."""

import io
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from accounts.management.commands.seed_demo import DEMO_BACKUP_CODES
from notifications.content import build_message, notices_for_delivery
from notifications.models import Notice
from practitioners.forms import FindPatientForm
from records import actions
from records.identifiers import validate_nir
from records.models import Profile

ROOT = Path(__file__).resolve().parent.parent
# A NIR as people write it: 15 characters, optionally grouped 1 2 2 2 3 3 2 with spaces or dots (I1).
NIR_SHAPED = re.compile(
    r"(?<![\w])[1-478](?:[ .\u00a0]?\d{2}){2}[ .\u00a0]?(?:\d{2}|2A|2B)(?:[ .\u00a0]?\d{3}){2}[ .\u00a0]?\d{2}(?![\w])"
)
SHOWN_TO_PEOPLE = ["templates", "locale", "docs", "README.md"]  # plus the apps' Python: help texts, placeholders
APPS = ["records", "access_control", "notifications", "accounts", "patients", "practitioners", "fhir_server", "config"]


def _files_shown_to_people():
    for name in SHOWN_TO_PEOPLE + APPS:
        base = ROOT / name
        if base.is_file():
            yield base
            continue
        for path in base.rglob("*"):
            if path.suffix in {".html", ".txt", ".py", ".po", ".md", ".yaml"} and "migrations" not in path.parts:
                yield path


def test_every_example_nir_in_templates_help_texts_and_docs_has_a_valid_key__I1():
    found = {}
    for path in _files_shown_to_people():
        for match in NIR_SHAPED.finditer(path.read_text(encoding="utf-8", errors="replace")):
            found.setdefault(match.group(), str(path.relative_to(ROOT)))
    help_text = str(FindPatientForm().fields["nir"].help_text)
    assert NIR_SHAPED.search(help_text), help_text  # the search page's example is among those checked
    wrong = {}
    for number, where in found.items():
        try:
            validate_nir(number)
        except ValidationError as exc:
            wrong[number] = (where, exc.messages)
    assert not wrong


@pytest.mark.django_db
def test_seed_demo_prints_each_patient_s_nir_and_birth_date_and_how_to_restore_the_codes():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    for profile in Profile.objects.all():
        assert re.search(rf"NIR {profile.nir}\s+born {profile.birth_date:%d/%m/%Y}", text), profile.display_name
    assert all(code in text for code in DEMO_BACKUP_CODES)
    assert "manage.py seed_demo` restores the five" in text and "`make run`" in text


def _offered_deadline(notice) -> bool:
    return any("vous opposer" in paragraph for paragraph in build_message(notice).after)


@pytest.mark.django_db
def test_seeded_pre_opening_notices_never_offer_an_opposition_deadline_before_their_date__L2_L3():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)  # also re-issues Bernard's code: a new notice on an open profile
    today = timezone.localdate()
    notices = list(notices_for_delivery().filter(kind=Notice.Kind.PRE_OPENING))
    assert len(notices) >= 7
    offering = []
    for notice in notices:
        profile = notice.profile
        deadline = timezone.localdate(profile.notice_sent_at + timedelta(days=settings.CARNET_OPPOSITION_DAYS))
        if _offered_deadline(notice):
            assert deadline >= today, profile.display_name
            offering.append(profile.display_name)
        elif profile.state == Profile.State.ACTIVE:
            # An active profile's provisional-code letter is a recovery letter: no opposition is offered at all.
            assert "opposer" not in " ".join(build_message(notice).after)
        else:
            assert deadline < today
            assert "Le délai d'opposition est écoulé" in " ".join(build_message(notice).after)
    assert offering  # a profile still in its window (Camille's first notice) keeps the offer (L2)


@pytest.mark.django_db
def test_a_code_re_issued_after_the_opening_offers_no_opposition__L2_L3(personas):
    bernard = personas.bernard
    assert bernard.state == Profile.State.OPEN
    actions.do_reissue_provisional_code(bernard, actor=personas.karim)
    notice = notices_for_delivery().filter(profile=bernard, kind=Notice.Kind.PRE_OPENING).latest("pk")
    assert not _offered_deadline(notice)


def test_make_run_listens_on_host_and_port_and_notices_link_there():
    result = subprocess.run(  # noqa: S603  dry run: prints the recipe, runs nothing
        ["make", "-n", "run", "HOST=127.0.0.2", "PORT=8123"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    recipe = result.stdout
    assert "runserver 127.0.0.2:8123" in recipe
    worker = next(line for line in recipe.splitlines() if "celery -A config worker" in line)
    server = next(line for line in recipe.splitlines() if "runserver" in line)
    for command in (worker, server):
        assert "CARNET_PUBLIC_URL='http://127.0.0.2:8123'" in command
