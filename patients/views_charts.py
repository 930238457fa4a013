"""The patient's accesses in charts (issue 18, item 5): over time, by profession and by mode (T3).

The numbers come from the patient-side trail (``access_control.queries.trail_for_patient``): the record
openings by professionals allowed over the last twelve months, the same entries the trail page lists. Each
chart has its table on the page (``templates/_chart.html``).
"""

from datetime import date, datetime, time

from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from access_control.models import AccessMode, TrailEntry
from access_control.queries import trail_for_patient
from access_control.rules import EMERGENCY_MODES, Action
from patients.portal import portal_view
from plumbing.charts import BLUE, PALETTE, RED, Series, chart
from records.labels import profession_snapshot_label

MONTHS = 12


def _first_months(today: date, count: int) -> list[date]:
    """The first day of each of the last ``count`` months, oldest first, this month last."""
    months, year, month = [], today.year, today.month
    for _step in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def accesses(request):
    """The allowed record openings by professionals over the last ``MONTHS`` months, and that window's start."""
    months = _first_months(timezone.localdate(), MONTHS)
    since = datetime.combine(months[0], time.min, tzinfo=timezone.get_current_timezone())
    entries = trail_for_patient(request.current_profile, as_legal_representative=request.acting_as_representative)
    opened = entries.filter(
        actor_kind=TrailEntry.ActorKind.PRACTITIONER,
        action=Action.OPEN_RECORD,
        outcome=TrailEntry.Outcome.ALLOWED,
        at__gte=since,
    ).order_by()
    return opened, months


def access_charts(request) -> list[dict]:
    """Three charts, three queries: per month (emergencies apart), per profession, per mode."""
    opened, months = accesses(request)
    emergency = Q(mode__in=EMERGENCY_MODES)
    per_month = {
        timezone.localtime(row["month"]).date() if isinstance(row["month"], datetime) else row["month"]: row
        for row in opened.annotate(month=TruncMonth("at"))
        .values("month")
        .annotate(normal=Count("pk", filter=~emergency), emergency=Count("pk", filter=emergency))
    }
    month_labels = [date_format(month, "YEAR_MONTH_FORMAT") for month in months]
    over_time = chart(
        "accesses-per-month",
        _("Consultations de votre dossier par mois (12 derniers mois)"),
        month_labels,
        [
            Series(_("Accès normaux"), [per_month.get(m, {}).get("normal", 0) for m in months], BLUE),
            Series(_("Accès en urgence"), [per_month.get(m, {}).get("emergency", 0) for m in months], RED),
        ],
        stacked=True,
        label_heading=_("Mois"),
    )
    professions = list(
        opened.values("actor_profession").annotate(n=Count("pk")).order_by("-n", "actor_profession")[:10]
    )
    by_profession = chart(
        "accesses-per-profession",
        _("Consultations par profession"),
        [profession_snapshot_label(row["actor_profession"]) or _("Non précisée") for row in professions],
        [
            Series(
                _("Consultations"), [row["n"] for row in professions], [PALETTE[i % 5] for i in range(len(professions))]
            )
        ],
        horizontal=True,
        label_heading=_("Profession"),
    )
    modes = dict(opened.values_list("mode").annotate(n=Count("pk")))
    choices = list(AccessMode.choices)
    by_mode = chart(
        "accesses-per-mode",
        _("Consultations par mode d'accès (les accès en urgence en rouge)"),
        [label for _value, label in choices],
        [
            Series(
                _("Consultations"),
                [modes.get(value, 0) for value, _label in choices],
                [RED if value in EMERGENCY_MODES else BLUE for value, _label in choices],
            )
        ],
        label_heading=_("Mode d'accès"),
    )
    return [over_time, by_profession, by_mode]


@require_GET
@portal_view
def trail_charts(request):
    """The trail's third tab: the accesses in charts, each with its table."""
    charts = access_charts(request)
    emergencies = sum(charts[0]["spec"]["datasets"][1]["data"])
    context = {"charts": charts, "emergencies": emergencies, "tab": "charts"}
    return render(request, "patients/trail_charts.html", context)
