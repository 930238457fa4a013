"""No module uses another module's private names (docs/conventions.md, One home per rule): a rule used twice gets one public home.

Every ``.py`` file of the project outside ``tests/``, ``.venv`` and migrations (the benchmarks in ``bench/``
included) is parsed, and two forms are refused:

- ``from x import _name`` (absolute or relative): always another module's private name;
- ``module._name`` where ``module`` was bound by an import to one of the project's own modules (``import
  records.actions as a`` or ``from records import actions``). Only project modules count, so ``Model._meta``
  and ``sys._getframe`` pass: the scan resolves names bound by imports, it does not guess from spelling.

Dunder names (``__version__``) are public by convention and allowed.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {".venv", "tests", "node_modules", "migrations", ".git", "var"}


def _project_files() -> list[Path]:
    return sorted(path for path in ROOT.rglob("*.py") if not SKIPPED.intersection(path.relative_to(ROOT).parts))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_project_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _package_of(path: Path) -> list[str]:
    return list(path.relative_to(ROOT).with_suffix("").parts[:-1])


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    package = _package_of(path)
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def _module_aliases(tree: ast.Module, path: Path) -> dict[str, str]:
    """The local names bound to one of the project's modules by an import, with the module's dotted name."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and _is_project_module(alias.name):
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, path)
            for alias in node.names:
                dotted = f"{source}.{alias.name}" if source else alias.name
                if _is_project_module(dotted):
                    aliases[alias.asname or alias.name] = dotted
    return aliases


def private_uses(source: str, path: Path) -> list[str]:
    """Each use of another module's private name in ``source`` (the file at ``path``), as ``line: text``."""
    tree = ast.parse(source, str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [
                f"{node.lineno}: from {'.' * node.level}{node.module or ''} import {alias.name}"
                for alias in node.names
                if _is_private(alias.name)
            ]
    aliases = _module_aliases(tree, path)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _is_private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr} ({aliases[node.value.id]})")
    return found


def test_the_scan_catches_both_forms_and_spares_the_rest():
    path = ROOT / "records" / "example.py"
    source = "\n".join(
        [
            "from records.actions import _lock",
            "from .enrolment import _writer",
            "from . import actions",
            "import records.storage as storage",
            "actions._trail(None)",
            "storage._key()",
            "Profile._meta.get_field('nir')",
            "from records import __doc__",
        ]
    )
    assert private_uses(source, path) == [
        "1: from records.actions import _lock",
        "2: from .enrolment import _writer",
        "5: actions._trail (records.actions)",
        "6: storage._key (records.storage)",
    ]


def test_no_module_uses_another_modules_private_names():
    files = _project_files()
    assert len(files) > 100  # the scan sees the project
    offences = [f"{path.relative_to(ROOT)}:{use}" for path in files for use in private_uses(path.read_text(), path)]
    assert offences == []
