"""The roster file of the health-insurance fund (rule L1): its columns, and reading it as validated rows.

A roster is a CSV read as a stream (UTF-8 with or without a BOM, ``\\n`` or ``\\r\\n`` line endings, comma or
semicolon separated, one header line naming the columns of ``ROSTER_COLUMNS``). Every row is validated on its
own: a bad row becomes a ``RowError`` with its line number and the reason, and never stops the others. What is
done with the good rows is ``records.enrolment``'s business.
"""

import csv
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from .identifiers import validate_nir
from .models import Profile

ADDRESS_LINE_MAX = 38  # NF Z10-011: 38 characters a line

ADDRESS_FIELDS = ("address_complement", "address_building", "address_street", "address_locality")
ROSTER_COLUMNS = (
    "nir",
    "birth_name",
    "usual_name",
    "first_names",
    "birth_date",
    "sex",
    "birth_place_code",
    *ADDRESS_FIELDS,
    "postal_code",
    "city",
    "country",
    "email",
    "representative_nir",
)
PROFILE_COLUMNS = ROSTER_COLUMNS[:-1]  # all but representative_nir are Profile fields
REQUIRED_COLUMNS = ("nir", "birth_name", "first_names", "birth_date", "sex")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_PLACE_CODE = re.compile(r"[0-9A-Z]{0,5}")
_OLDEST_BIRTH_YEAR = 1890


class RosterFormatError(ValueError):
    """The file cannot be read as a roster at all (no header, missing columns): nothing was loaded."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A rejected row: its line in the file and why (no personal data, so it can be logged and shown)."""

    line: int
    reason: str

    def __str__(self) -> str:
        return _t("Ligne %(line)d : %(reason)s") % {"line": self.line, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One validated roster row, in the stored forms (NIR normalised, date parsed)."""

    line: int
    nir: str
    birth_name: str
    usual_name: str
    first_names: str
    birth_date: date
    sex: str
    birth_place_code: str
    address_complement: str
    address_building: str
    address_street: str
    address_locality: str
    postal_code: str
    city: str
    country: str
    email: str
    representative_nir: str

    def profile_fields(self) -> dict:
        """The keyword arguments ``do_enrol_profile`` takes for this person (representative aside)."""
        return {name: getattr(self, name) for name in PROFILE_COLUMNS}


# --- Reading and validating ------------------------------------------------------------------------------


def _max_length(name: str) -> int:
    # Concrete fields; the limit is only compared with the text columns, which all have a max_length.
    return Profile._meta.get_field(name).max_length  # type: ignore[union-attr, return-value]


_LIMITS = {name: _max_length(name) for name in PROFILE_COLUMNS}
_SEXES = frozenset(Profile.Sex.values)  # Choices.values builds a new list on each call (~7 µs a row)
_LABELS = {
    "birth_name": _("le nom de naissance"),
    "usual_name": _("le nom d'usage"),
    "first_names": _("les prénoms"),
    "birth_place_code": _("le code du lieu de naissance"),
    "address_complement": _("la ligne d'adresse « complément »"),
    "address_building": _("la ligne d'adresse « bâtiment, résidence »"),
    "address_street": _("la ligne d'adresse « numéro et voie »"),
    "address_locality": _("la ligne d'adresse « lieu-dit, boîte postale »"),
    "postal_code": _("le code postal"),
    "city": _("la commune"),
    "email": _("le courriel"),
}


def _invalid(message, **params) -> ValidationError:
    return ValidationError(message, params=params or None)


def reason_text(error: ValidationError) -> str:
    """A validation error's messages as one line (a ``RowError``'s reason)."""
    return " ".join(str(m) for m in error.messages)


def _text(values: dict, name: str, *, required: bool = False) -> str:
    value = (values.get(name) or "").strip()
    if required and not value:
        raise _invalid(_("%(what)s est obligatoire."), what=str(_LABELS[name]).capitalize())
    limit = ADDRESS_LINE_MAX if name in ADDRESS_FIELDS else _LIMITS[name]
    if len(value) > limit:
        raise _invalid(
            _("%(what)s dépasse %(limit)d caractères (%(length)d)."),
            what=str(_LABELS[name]).capitalize(),
            limit=limit,
            length=len(value),
        )
    return value


def _birth_date(value: str, today: date) -> date:
    value = value.strip()
    if not _DATE.fullmatch(value):
        raise _invalid(_("La date de naissance doit être au format AAAA-MM-JJ."))
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise _invalid(_("La date de naissance n'existe pas.")) from None
    if parsed > today:
        raise _invalid(_("La date de naissance est dans le futur."))
    if parsed.year < _OLDEST_BIRTH_YEAR:
        raise _invalid(_("La date de naissance est antérieure à %(year)d."), year=_OLDEST_BIRTH_YEAR)
    return parsed


def clean_row(line: int, values: dict, *, today: date) -> RosterRow:
    """Validate one row (a column name -> raw text mapping); raises ``ValidationError`` with the reason."""
    if any("\ufffd" in (value or "") for value in values.values()):
        raise _invalid(_("Caractères illisibles : le fichier doit être encodé en UTF-8."))
    nir = validate_nir(values.get("nir") or "")  # I1
    sex = (values.get("sex") or "").strip().upper()
    if sex not in _SEXES:
        raise _invalid(_("Le sexe doit valoir M ou F."))
    birth_place_code = _text(values, "birth_place_code").upper()
    if not _PLACE_CODE.fullmatch(birth_place_code):
        raise _invalid(_("Le code du lieu de naissance (INSEE) compte au plus 5 chiffres ou lettres."))
    country = (values.get("country") or "").strip().upper() or "FR"
    if not _COUNTRY.fullmatch(country):
        raise _invalid(_("Le pays doit être un code ISO 3166 de deux lettres (FR)."))
    email = _text(values, "email")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise _invalid(_("Le courriel n'est pas une adresse valide.")) from None
    representative_nir = (values.get("representative_nir") or "").strip()
    if representative_nir:
        try:
            representative_nir = validate_nir(representative_nir)
        except ValidationError as exc:
            raise _invalid(_("NIR du représentant légal : %(reason)s"), reason=reason_text(exc)) from None
        if representative_nir == nir:
            raise _invalid(_("Une personne ne peut pas être son propre représentant légal."))
    return RosterRow(
        line=line,
        nir=nir,
        birth_name=_text(values, "birth_name", required=True),
        usual_name=_text(values, "usual_name"),
        first_names=_text(values, "first_names", required=True),
        birth_date=_birth_date(values.get("birth_date") or "", today),
        sex=sex,
        birth_place_code=birth_place_code,
        address_complement=_text(values, "address_complement"),
        address_building=_text(values, "address_building"),
        address_street=_text(values, "address_street"),
        address_locality=_text(values, "address_locality"),
        postal_code=_text(values, "postal_code"),
        city=_text(values, "city"),
        country=country,
        email=email,
        representative_nir=representative_nir,
    )


def _header(line: str) -> tuple[str, list[str]]:
    delimiter = ";" if line.count(";") > line.count(",") else ","
    names = [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter))]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise RosterFormatError(
            _t("Colonnes obligatoires absentes de la première ligne : %(columns)s.") % {"columns": ", ".join(missing)}
        )
    return delimiter, names


@dataclass(frozen=True, slots=True)
class UncheckedRow:
    """A row read but not validated yet: validation may then run elsewhere (a loading process) with ``check``."""

    line: int
    names: tuple[str, ...]  # shared by every row of a file (pickled once per chunk)
    fields: tuple[str, ...]

    def check(self, today: date) -> RosterRow | RowError:
        """The validated row, or the reason it is refused."""
        try:
            return clean_row(self.line, dict(zip(self.names, self.fields, strict=True)), today=today)
        except ValidationError as exc:
            return RowError(self.line, reason_text(exc))


def read_roster(
    fileobj, *, today: date | None = None, check: bool = True
) -> Iterator[RosterRow | RowError] | Iterator[UncheckedRow | RowError]:
    """Stream a binary roster file as validated rows and per-line errors (blank lines are skipped).

    With ``check=False`` the rows come as ``UncheckedRow`` (only the file's structure checked: quotes, number
    of columns), to be validated where they are loaded. The header is read at once: a file that is not a
    roster raises ``RosterFormatError`` here.
    """
    today = today or timezone.localdate()
    # utf-8-sig drops a BOM; newline="" hands "\r\n" to csv, which treats it as one line end; a byte that is
    # not UTF-8 becomes U+FFFD and fails that row only.
    text = io.TextIOWrapper(fileobj, encoding="utf-8-sig", errors="replace", newline="")
    first = text.readline()
    while first and not first.strip():
        first = text.readline()
    if not first:
        raise RosterFormatError(_t("Le fichier est vide."))
    delimiter, names = _header(first)
    reader = csv.reader(itertools.chain([first], text), delimiter=delimiter, strict=True)
    next(reader)  # the header
    unchecked = _rows(reader, tuple(names))
    if not check:
        return unchecked
    return (row.check(today) if isinstance(row, UncheckedRow) else row for row in unchecked)


def _rows(reader, names: tuple[str, ...]) -> Iterator[UncheckedRow | RowError]:
    width = len(names)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            # strict=True: an unclosed quote (typically a truncated last line) or a stray one.
            yield RowError(reader.line_num, _t("Ligne mal formée (guillemets) ou tronquée."))
            continue
        if not any(value.strip() for value in fields):
            continue
        if len(fields) != width:
            yield RowError(
                reader.line_num,
                _t("%(found)d colonnes au lieu de %(expected)d (ligne tronquée ?).")
                % {"found": len(fields), "expected": width},
            )
            continue
        yield UncheckedRow(reader.line_num, names, tuple(fields))
