"""Every docstring of product code opens with a one-line summary (docs/conventions.md, "Comments and docstrings").

The first line of a docstring is what ``help()``, the editor's hover and the API schema show; it must be a whole
sentence on its own, followed by a blank line (or nothing). The scan parses every module of the product packages
(migrations aside) and lists each docstring whose first line runs on into a second one.
"""

import ast
import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PRODUCT_PACKAGES = (
    "config",
    "plumbing",
    "records",
    "access_control",
    "notifications",
    "accounts",
    "patients",
    "practitioners",
    "fhir_server",
)
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _product_files() -> list[Path]:
    files: list[Path] = []
    for package in PRODUCT_PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    return sorted(files)


def _run_on_summaries(path: Path, root: Path = ROOT) -> list[str]:
    """Return "file:line name: summary" for each docstring of ``path`` whose first line is not alone."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, DOCUMENTED):
            continue
        docstring = ast.get_docstring(node, clean=False)
        if docstring is None:
            continue
        lines = inspect.cleandoc(docstring).splitlines()
        if len(lines) > 1 and lines[1].strip():
            name = "<module>" if isinstance(node, ast.Module) else node.name
            line = 1 if isinstance(node, ast.Module) else node.body[0].lineno
            found.append(f"{path.relative_to(root)}:{line} {name}: {lines[0].strip()[:70]!r}")
    return found


def test_the_scan_covers_every_product_package():
    files = _product_files()
    for package in PRODUCT_PACKAGES:
        assert any(p.parts[len(ROOT.parts)] == package for p in files), package
    assert len(files) > 100


def test_the_scan_finds_a_summary_that_runs_on(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Module summary.\n\nBody."""\n\n'
        'def good():\n    """One line."""\n\n'
        'def bad():\n    """A summary that\n    runs on.\n    """\n\n'
        "class Bad:\n"
        '    """\n    Starts on the second line and\n    runs on.\n    """\n',
        encoding="utf-8",
    )
    problems = _run_on_summaries(sample, root=tmp_path)
    assert [p.split(":")[0] for p in problems] == ["sample.py", "sample.py"]
    assert [p.split(" ")[1] for p in problems] == ["bad:", "Bad:"]


def test_every_docstring_opens_with_a_one_line_summary():
    problems = [problem for path in _product_files() for problem in _run_on_summaries(path)]
    assert not problems, (
        f"{len(problems)} docstring(s) whose first line runs on into the second; make the first line one "
        "sentence, then a blank line, then the rest:\n" + "\n".join(problems)
    )
