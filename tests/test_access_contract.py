"""The one-door rule (docs/conventions.md, One door): only access_control reads documents for a practitioner.

Every module of every door (patients/, practitioners/, fhir_server/, accounts/), of notifications/, config/ and
the library (plumbing/) is scanned for a direct query of ``records.Document``: its managers, the reverse
accessor ``profile.documents``, or ``apps.get_model("records", "Document")``. Such a query belongs in
``access_control.api`` (what an actor may see), ``records.actions`` / ``records.storage`` / the actions of
access_control (writes), never in a door. The doors are whole packages (docs/architecture.md), so no file-name
pattern is needed to find them.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DIRECT_QUERY = re.compile(
    r"""\bDocument\s*\.\s*(?:objects|_default_manager|_base_manager)\b"""
    r"""|\.documents\s*\.\s*(?:all|filter|exclude|get|first|last|count|exists|order_by|select_related|values|values_list|iterator|in_bulk|aggregate|annotate)\b"""
    r"""|get_model\(\s*["']records["']\s*,\s*["']Document["']\s*\)""",
)
SCANNED_PACKAGES = ("patients", "practitioners", "fhir_server", "accounts", "notifications", "config", "plumbing")


def _scanned_files() -> list[Path]:
    files = []
    for package in SCANNED_PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def test_the_pattern_catches_every_way_around_the_door():
    for line in (
        "Document.objects.filter(profile=profile)",
        "Document._default_manager.all()",
        "profile.documents.all()",
        "request.profile.documents.filter(masked_at=None)",
        'apps.get_model("records", "Document")',
    ):
        assert DIRECT_QUERY.search(line), line
    for line in ("access_control.api.visible_documents(practitioner, profile)", 'storages["documents"]'):
        assert not DIRECT_QUERY.search(line), line


def test_no_page_queries_documents_outside_access_control():
    files = _scanned_files()
    # The scan is not vacuous: every door's pages and APIs are in it.
    scanned = {str(path.relative_to(ROOT)) for path in files}
    assert {
        "patients/views_documents.py",
        "patients/api.py",
        "practitioners/views.py",
        "fhir_server/views.py",
    } <= scanned
    offences = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if DIRECT_QUERY.search(line) and not line.lstrip().startswith("#"):
                offences.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offences == [], "Read documents through access_control.api:\n" + "\n".join(offences)
