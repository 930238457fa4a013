"""FHIR search parameters, checked before anything is opened: honoured exactly, or refused with a 400.

A search that silently ignores a filter lies to its client (it believes it filtered). So every IHE MHD ITI-67
parameter of DocumentReference is either mapped to Carnet's data or refused with an OperationOutcome saying
why; so is a modifier or a prefix Carnet does not implement. Any other parameter is refused under
``Prefer: handling=strict`` and, by default (lenient), left out of the Bundle's ``self`` link, which is how
FHIR tells the client what was applied.

Values: a comma is an OR-list (``type=a,b``), repeated parameters are ANDed (``date=ge2024&date=lt2025``).
Dates take any precision (``2026``, ``2026-12``, ``2026-12-01``, ``2026-12-01T10:00``, with or without a zone;
without one, Carnet's zone) and the prefixes eq, ne, gt, lt, ge, le, sa, eb.
"""

import calendar
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions

from fhir_server import resources

STRICT = "strict"
# Parameters every search takes: paging and the answer's shape (``_format`` is content negotiation).
COMMON = {"_count", "page", "_format", "_summary"}
NOTHING = Q(pk__in=[])


class BadSearch(exceptions.APIException):
    status_code = 400
    default_code = "invalid"


def bad(message, code: str = "invalid") -> BadSearch:
    return BadSearch(detail=message, code=code)


def handling(request) -> str:
    """``strict`` when the client sent ``Prefer: handling=strict``; ``lenient`` otherwise (FHIR's default)."""
    for preference in request.headers.get("Prefer", "").split(","):
        name, _sep, value = preference.strip().partition("=")
        if name.strip().lower() == "handling" and value.strip().strip('"').lower() == STRICT:
            return STRICT
    return "lenient"


def split_key(key: str) -> tuple[str, str]:
    name, _sep, modifier = key.partition(":")
    return name, modifier


def known_only(params, known: set[str], *, strict: bool) -> list[tuple[str, str]]:
    """The (key, value) pairs of the known parameters; an unknown one is a 400 under strict handling.

    Empty values are dropped (FHIR: a parameter without a value is ignored).
    """
    kept: list[tuple[str, str]] = []
    for key, values in params.lists():
        if split_key(key)[0] not in known:
            if strict:
                raise bad(
                    _("Paramètre de recherche non pris en charge : %(name)s.") % {"name": key}, "unknown_parameter"
                )
            continue
        kept.extend((key, value) for value in values if value != "")
    return kept


# --- values ----------------------------------------------------------------------------------------------------

_DATE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.\d+)?)?(?P<zone>Z|[+ -]\d{2}:\d{2})?)?)?)?$"
)
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


def date_range(value: str) -> tuple[datetime, datetime]:
    """The instants ``[start, end)`` a FHIR date search value stands for, at its own precision."""
    match = _DATE.match(value)
    if match is None:
        raise bad(
            _("Date invalide : %(value)s (AAAA, AAAA-MM, AAAA-MM-JJ ou AAAA-MM-JJThh:mm[:ss][zone]).")
            % {"value": value}
        )
    parts = {key: int(number) for key, number in match.groupdict().items() if number and key != "zone"}
    zone_text = match.group("zone")
    if zone_text is None:
        zone: Any = timezone.get_current_timezone()
    elif zone_text == "Z":
        zone = UTC
    else:  # "+" arrives as a space when the client did not encode it
        sign = -1 if zone_text[0] == "-" else 1
        hours, minutes = (int(x) for x in zone_text[1:].split(":"))
        zone = dt_timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        year, month, day = parts["year"], parts.get("month", 1), parts.get("day", 1)
        start_day = date(year, month, day)
        start = datetime.combine(
            start_day, time(parts.get("hour", 0), parts.get("minute", 0), parts.get("second", 0)), tzinfo=zone
        )
    except ValueError:
        raise bad(_("Date invalide : %(value)s.") % {"value": value}) from None
    if "second" in parts:
        end = start + timedelta(seconds=1)
    elif "minute" in parts:
        end = start + timedelta(minutes=1)
    elif "day" in parts:
        end = datetime.combine(start_day + timedelta(days=1), time(), tzinfo=zone)
    elif "month" in parts:
        end = datetime.combine(start_day + timedelta(days=calendar.monthrange(year, month)[1]), time(), tzinfo=zone)
    else:
        end = datetime.combine(date(year + 1, 1, 1), time(), tzinfo=zone) if year < 9999 else start.max
    return start, end


def _day_bounds(start: datetime, end: datetime) -> tuple[date, date]:
    """A date field's ``[start, end)`` in days: a time in the search value is taken as its day."""
    local = timezone.get_current_timezone()
    first = start.astimezone(local).date()
    last = end.astimezone(local)
    last_day = last.date() if last.time() == time() else last.date() + timedelta(days=1)
    return first, max(last_day, first + timedelta(days=1))


def date_condition(value: str, field_name: str, *, is_date: bool) -> Q:
    """One date value (with its prefix) as a condition on a DateTimeField, or a DateField when ``is_date``."""
    prefix = value[:2] if value[:2].isalpha() else "eq"
    raw = value[2:] if value[:2].isalpha() else value
    if prefix not in PREFIXES:
        raise bad(_("Préfixe de date non pris en charge : %(prefix)s.") % {"prefix": prefix})
    start, end = date_range(raw)
    low: date | datetime = start
    high: date | datetime = end
    if is_date:
        low, high = _day_bounds(start, end)
    inside = Q(**{f"{field_name}__gte": low, f"{field_name}__lt": high})
    return {
        "eq": inside,
        "ne": ~inside,
        "gt": Q(**{f"{field_name}__gte": high}),
        "sa": Q(**{f"{field_name}__gte": high}),
        "lt": Q(**{f"{field_name}__lt": low}),
        "eb": Q(**{f"{field_name}__lt": low}),
        "ge": Q(**{f"{field_name}__gte": low}),
        "le": Q(**{f"{field_name}__lt": high}),
    }[prefix]


def token(value: str) -> tuple[str | None, str]:
    """A FHIR token: ``system|code`` (an empty system means "no system"), or ``code`` (any system)."""
    if "|" in value:
        system, _sep, code = value.partition("|")
        return system, code
    return None, value


def any_of(conditions: list[Q]) -> Q:
    """The OR of the conditions (``Q()`` matches everything: ORing with it must not vanish, as ``|`` would do)."""
    if not conditions:
        return NOTHING
    if any(not condition for condition in conditions):
        return Q()
    combined = conditions[0]
    for condition in conditions[1:]:
        combined |= condition
    return combined


def or_values(value: str) -> list[str]:
    """A comma-separated OR-list (``\\,`` escapes a comma inside a value)."""
    parts = re.split(r"(?<!\\),", value)
    return [part.replace("\\,", ",") for part in parts if part != ""]


# --- DocumentReference (IHE MHD ITI-67) ---------------------------------------------------------------------------

# What an ITI-67 parameter would need that Carnet does not record: refused, never ignored.
UNANSWERABLE = {
    "event": _("Carnet n'enregistre pas les actes ni les pathologies (event) des documents."),
    "related": _("Carnet n'enregistre pas de ressources liées (context.related) aux documents."),
}
DOCUMENT_PARAMETERS = {
    "patient",
    "subject",
    "patient.identifier",
    "status",
    "type",
    "category",
    "date",
    "creation",
    "period",
    "author.given",
    "author.family",
    "security-label",
    "identifier",
    "format",
    "setting",
    "facility",
    "relatesto",
    *UNANSWERABLE,
}
_STRING_MODIFIERS = {"", "exact", "contains"}
STATUS_SYSTEM = resources.STATUS_SYSTEM


@dataclass
class DocumentSearch:
    """A checked DocumentReference search: whom, how to narrow, and what the links repeat."""

    patient: str = ""
    patient_identifier: tuple[str, str] | None = None
    conditions: list[Q] = field(default_factory=list)
    summary_count: bool = False
    applied: list[tuple[str, str]] = field(default_factory=list)

    def narrow(self, documents):
        for condition in self.conditions:
            documents = documents.filter(condition)
        return documents


def _status(value: str) -> Q:
    system, code = token(value)
    if system not in (None, STATUS_SYSTEM) or code not in ("current", "superseded", "entered-in-error"):
        raise bad(_("Statut inconnu : %(value)s (current, superseded, entered-in-error).") % {"value": value})
    if code == "entered-in-error":
        return NOTHING  # Carnet keeps no reference entered in error
    return Q(status=code)


def _type(value: str) -> Q:
    system, code = token(value)
    condition = Q(document_type__code=code) if code else Q()
    if system is None:
        return condition
    for name, uri in (("LOINC", resources.LOINC_SYSTEM), ("TRE_A05", resources.TRE_A05_SYSTEM)):
        if system == uri:
            return condition & Q(document_type__code_system__iexact=name)
    return NOTHING


def _category(value: str) -> Q:
    system, code = token(value)
    if system is not None and system not in resources.CLASS_SYSTEMS:
        return NOTHING
    return Q(document_type__class_code=code) if code else Q()


def _security_label(value: str, *, for_practitioner: bool) -> Q:
    system, code = token(value)
    if system in (None, resources.CONFIDENTIALITY_SYSTEM) and code in (
        resources.NORMAL_CONFIDENTIALITY,
        resources.RESTRICTED_CONFIDENTIALITY,
    ):
        # resources.confidentiality: R for held and minor's secret documents, and masked ones in the patient's view
        restricted = Q(held_until__isnull=False, hold_released_at__isnull=True) | Q(hidden_from_representatives=True)
        if not for_practitioner:
            restricted |= Q(masked_at__isnull=False)
        return restricted if code == resources.RESTRICTED_CONFIDENTIALITY else ~restricted
    if system not in (None, resources.TRE_A07_SYSTEM):
        return NOTHING
    if code == resources.HOLD_CODE:
        return Q(held_until__isnull=False, hold_released_at__isnull=True)
    if code == resources.MINORS_SECRET_CODE:
        return Q(hidden_from_representatives=True)
    if code == resources.MASKED_CODE and not for_practitioner:  # practitioners are never told of masks (A4)
        return Q(masked_at__isnull=False)
    return NOTHING


def _format(value: str) -> Q:
    system, code = token(value)
    if system is not None and system not in resources.FORMAT_SYSTEMS:
        return NOTHING
    by_type = {code: content_type for content_type, code in resources.FORMAT_CODES.items()}
    if code in by_type:
        return Q(content_type=by_type[code])
    if code == resources.MIME_TYPE_SUFFICIENT:
        return ~Q(content_type__in=list(resources.FORMAT_CODES))
    return NOTHING


def _identifier(value: str) -> Q:
    system, code = token(value)
    if system not in (None, resources.URI_SYSTEM):
        return NOTHING
    document_id = resources.document_id_from_identifier(code)
    by_unique_id = Q(unique_id=code) if code else NOTHING  # the masterIdentifier the author gave
    return by_unique_id | Q(pk=document_id) if document_id is not None else by_unique_id


def _setting(value: str, field_name: str) -> Q:
    """``setting`` or ``facility``: TRE_R02 codes for practitioners' documents, TRE_A00 for the patient's own."""
    system, code = token(value)
    if not code:
        return NOTHING
    by_practitioner = Q(author_kind="practitioner", **{field_name: code})
    by_patient = Q(author_kind="patient", **{field_name: code})
    if code == resources.PATIENT_PRODUCER:
        by_patient |= Q(author_kind="patient", **{field_name: ""})  # the default for the patient's uploads
    if system is None:
        return by_practitioner | by_patient
    if system in resources.SECTOR_SYSTEMS:
        return by_practitioner
    if system == resources.NON_PS_SYSTEM:
        return by_patient
    return NOTHING


def _relatesto(value: str) -> Q:
    """``relatesto``: the documents that replace the one named (``DocumentReference/<id>``)."""
    target = value.rsplit("/", 1)[-1]
    if not target.isdigit() or int(target) > 2**63 - 1:
        return NOTHING
    return Q(replaces_id=int(target))


def _string(value: str, field_name: str, modifier: str) -> Q:
    if modifier == "exact":
        return Q(**{field_name: value})
    if modifier == "contains":
        return Q(**{f"{field_name}__icontains": value})
    return Q(**{f"{field_name}__istartswith": value})  # FHIR string search: case-insensitive prefix


def document_search(params, *, strict: bool, for_practitioner: bool) -> DocumentSearch:
    """Check every parameter of a DocumentReference search and turn it into conditions (or a 400)."""
    search = DocumentSearch()
    for key, value in known_only(params, DOCUMENT_PARAMETERS | COMMON, strict=strict):
        name, modifier = split_key(key)
        if modifier and not (name in ("author.given", "author.family") and modifier in _STRING_MODIFIERS):
            raise bad(_("Modificateur non pris en charge : %(key)s.") % {"key": key}, "unsupported_modifier")
        if name in UNANSWERABLE:
            raise bad(UNANSWERABLE[name], "unsupported_parameter")
        values = or_values(value)
        if name in ("patient", "subject"):
            if search.patient or len(values) != 1:
                raise bad(_("Une recherche porte sur un seul patient."), "one_patient")
            search.patient = value.rsplit("/", 1)[-1]  # Patient/<id> or an absolute URL
            continue  # the links name the patient by the id resolved in the view
        if name == "patient.identifier":
            system, nir = token(value)
            if not resources.accepts_nir_system(system) or len(values) != 1:
                raise bad(_("Identifiant attendu : %(system)s|<NIR>.") % {"system": resources.nir_system()})
            search.patient_identifier = (system or "", nir)
            continue  # never repeated in a link: the NIR stays out of URLs
        if name in COMMON:
            if name == "_summary":
                if value not in ("count", "false"):
                    raise bad(_("_summary accepte count ou false."), "unsupported_summary")
                search.summary_count = value == "count"
            if name == "_format":
                continue  # answered by the media type
        else:
            search.conditions.append(_condition(name, modifier, values, for_practitioner=for_practitioner))
        search.applied.append((key, value))
    return search


def _condition(name: str, modifier: str, values: list[str], *, for_practitioner: bool) -> Q:
    if name == "status":
        return any_of([_status(v) for v in values])
    if name == "type":
        return any_of([_type(v) for v in values])
    if name == "category":
        return any_of([_category(v) for v in values])
    if name in ("date", "creation"):  # both are the deposit instant (docs/api.md, MHD table)
        return any_of([date_condition(v, "deposited_at", is_date=False) for v in values])
    if name == "period":
        return any_of([date_condition(v, "care_date", is_date=True) for v in values])
    if name == "author.given":
        return any_of([_string(v, "author_practitioner__first_name", modifier) for v in values])
    if name == "author.family":
        return any_of([_string(v, "author_practitioner__last_name", modifier) for v in values])
    if name == "security-label":
        return any_of([_security_label(v, for_practitioner=for_practitioner) for v in values])
    if name == "format":
        return any_of([_format(v) for v in values])
    if name == "setting":
        return any_of([_setting(v, "practice_setting") for v in values])
    if name == "facility":
        return any_of([_setting(v, "facility_type") for v in values])
    if name == "relatesto":
        return any_of([_relatesto(v) for v in values])
    assert name == "identifier"  # noqa: S101 -- DOCUMENT_PARAMETERS lists nothing else
    return any_of([_identifier(v) for v in values])
