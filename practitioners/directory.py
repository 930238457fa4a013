"""Import of the national practitioner extract (the RPPS directory), by the command or the admin page.

Format (``docs/admin.md``): UTF-8 with or without a BOM, ``;``-separated, ``\\n`` or ``\\r\\n`` line ends, ten
columns in this order, an optional header line (its first field is ``RPPS``)::

    RPPS;title;last_name;first_name;profession_code;profession_label;specialty;address;postal_code;city

Each line is validated on its own (an RPPS of 11 digits is required; a Luhn failure is only a warning, I2);
bad lines are reported with their number and never stop the others. Good lines are loaded in chunks by
``practitioners.actions.do_import_directory_entries`` (one transaction and one trail entry per chunk), which
updates known practitioners in place: importing the same extract twice changes nothing the second time.
Memory stays flat: one chunk at a time, and only the first ``MAX_KEPT`` errors and warnings are kept.
"""

import csv
import io
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from records.actors import Actor
from records.identifiers import validate_rpps

from .actions import DirectoryEntry, do_import_directory_entries
from .models import Practitioner, Profession

CHUNK_ROWS = 2000
MAX_KEPT = 1000
COLUMNS = (
    "rpps",
    "title",
    "last_name",
    "first_name",
    "profession_code",
    "profession_label",
    "specialty",
    "practice_address",
    "practice_postal_code",
    "practice_city",
)
_LIMITS = {
    "title": Practitioner._meta.get_field("title").max_length,
    "last_name": Practitioner._meta.get_field("last_name").max_length,
    "first_name": Practitioner._meta.get_field("first_name").max_length,
    "profession_code": Profession._meta.get_field("code").max_length,
    "profession_label": Profession._meta.get_field("label_fr").max_length,
    "specialty": Practitioner._meta.get_field("specialty").max_length,
    "practice_address": Practitioner._meta.get_field("practice_address").max_length,
    "practice_postal_code": Practitioner._meta.get_field("practice_postal_code").max_length,
    "practice_city": Practitioner._meta.get_field("practice_city").max_length,
}
_REQUIRED = ("last_name", "profession_code")


class DirectoryFormatError(ValueError):
    """The file is not a directory extract at all (empty): nothing was imported."""


@dataclass(frozen=True)
class LineMessage:
    """An error (line refused) or a warning (line imported) about one line; RPPS numbers are public."""

    line: int
    message: str
    rpps: str = ""

    def __str__(self) -> str:
        prefix = _("Ligne %(line)d") % {"line": self.line}
        if self.rpps:
            prefix += f" (RPPS {self.rpps})"
        return f"{prefix} : {self.message}"


@dataclass
class DirectoryReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    warned: int = 0
    new_professions: list[str] = field(default_factory=list)
    errors: list[LineMessage] = field(default_factory=list)
    warnings: list[LineMessage] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "warned": self.warned,
            "new_professions": list(self.new_professions),
        }


def _clean(line: int, fields: list[str]) -> tuple[DirectoryEntry, list[str]]:
    """One line as a ``DirectoryEntry`` and its warnings; raises ``ValidationError`` when it is refused."""
    if any("\ufffd" in value for value in fields):
        raise ValidationError(_("Caractères illisibles : le fichier doit être encodé en UTF-8."))
    values = dict(zip(COLUMNS, (value.strip() for value in fields), strict=True))
    rpps, warnings = validate_rpps(values.pop("rpps"))  # I2: format required, Luhn only warned
    for name in _REQUIRED:
        if not values[name]:
            raise ValidationError(_("La colonne %(column)s est vide.") % {"column": name})
    if not values["profession_code"].isdigit():
        raise ValidationError(_("Le code profession doit être numérique (10 pour médecin, 21 pour pharmacien…)."))
    for name, limit in _LIMITS.items():
        if len(values[name]) > limit:  # type: ignore[operator]  # every column here is a CharField with a max_length
            raise ValidationError(
                _("La colonne %(column)s dépasse %(limit)d caractères.") % {"column": name, "limit": limit}
            )
    return DirectoryEntry(line=line, rpps=rpps, **values), warnings


def read_directory(fileobj) -> Iterator[tuple[DirectoryEntry | None, LineMessage | None, list[LineMessage]]]:
    """Stream a binary extract as ``(entry, error, warnings)`` per non-blank line (entry None when refused)."""
    text = io.TextIOWrapper(fileobj, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(text, delimiter=";", strict=True)
    first = True
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield None, LineMessage(reader.line_num, _("Ligne mal formée (guillemets) ou tronquée.")), []
            continue
        if not any(value.strip() for value in fields):
            continue
        if first:
            first = False
            if fields[0].strip().upper() == "RPPS":
                continue  # the optional header line
        line = reader.line_num
        if len(fields) != len(COLUMNS):
            message = _("%(found)d colonnes au lieu de %(expected)d (ligne tronquée ?).") % {
                "found": len(fields),
                "expected": len(COLUMNS),
            }
            yield None, LineMessage(line, message), []
            continue
        try:
            entry, warnings = _clean(line, fields)
        except ValidationError as exc:
            yield None, LineMessage(line, " ".join(exc.messages), fields[0].strip()[:11]), []
            continue
        yield entry, None, [LineMessage(line, warning, entry.rpps) for warning in warnings]


def import_directory(
    fileobj,
    *,
    actor: Actor,
    chunk_rows: int = CHUNK_ROWS,
    on_message: Callable[[str, LineMessage], None] | None = None,
    on_progress: Callable[[DirectoryReport], None] | None = None,
) -> DirectoryReport:
    """Import an extract (binary stream) as ``actor`` (staff); returns the report. See the module docstring.

    ``on_message(kind, message)`` sees every error (``"error"``) and warning (``"warning"``).
    """
    report = DirectoryReport()

    def keep(kind: str, message: LineMessage) -> None:
        kept = report.errors if kind == "error" else report.warnings
        if len(kept) < MAX_KEPT:
            kept.append(message)
        if on_message is not None:
            on_message(kind, message)

    items = read_directory(fileobj)
    seen_any = False
    while batch := list(itertools.islice(items, chunk_rows)):
        seen_any = True
        entries: dict[str, DirectoryEntry] = {}
        for entry, error, warnings in batch:
            report.rows += 1
            if error is not None:
                report.rejected += 1
                keep("error", error)
                continue
            assert entry is not None  # read_directory gives an entry whenever it gives no error
            if entry.rpps in entries:
                report.rejected += 1
                message = _("RPPS en double dans le fichier (déjà à la ligne %(line)d).") % {
                    "line": entries[entry.rpps].line
                }
                keep("error", LineMessage(entry.line, message, entry.rpps))
                continue
            entries[entry.rpps] = entry
            if warnings:
                report.warned += 1
                for warning in warnings:
                    keep("warning", warning)
        if entries:
            outcome = do_import_directory_entries(list(entries.values()), actor=actor)
            report.created += outcome.created
            report.updated += outcome.updated
            report.unchanged += outcome.unchanged
            report.new_professions.extend(outcome.new_professions)
        if on_progress is not None:
            on_progress(report)
    if not seen_any:
        raise DirectoryFormatError(_("Le fichier est vide."))
    return report
