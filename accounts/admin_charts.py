"""The staff's charts in the admin (``/admin/graphiques/``, issue 18 item 5): no personal data, counts only.

Notices per day by channel, letters per print batch, and emergency accesses per week with those still awaiting
review (A7). Each chart is shown only to staff who may view its rows (the models' view permissions), and has its
table on the page (``templates/_chart.html``). The curiosity report draws its own chart on its page (A13).
"""

from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.db.models.functions import TruncDate, TruncWeek
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from access_control.models import Review
from notifications.models import Notice, PrintBatch
from plumbing.charts import BLUE, GREEN, GREY, ORANGE, RED, Series, chart
from records.actors import signed_in_account

DAYS = 14
BATCHES = 14
WEEKS = 12
CHANNEL_COLOURS: dict[str, str] = {Notice.Channel.EMAIL: BLUE, Notice.Channel.LETTER: ORANGE}


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def notices_per_day() -> dict[str, Any]:
    """Notices created on each of the last ``DAYS`` days, one series per channel (one query)."""
    today = timezone.localdate()
    days = [today - timedelta(days=offset) for offset in range(DAYS - 1, -1, -1)]
    counts = {
        (row["day"], row["channel"]): row["n"]
        for row in Notice.objects.filter(created_at__gte=_midnight(days[0]))
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values("day", "channel")
        .annotate(n=Count("pk"))
    }
    return chart(
        "notices-per-day",
        _("Avis créés par jour et par canal (14 derniers jours)"),
        [date_format(day, "SHORT_DATE_FORMAT") for day in days],
        [
            Series(label, [counts.get((day, value), 0) for day in days], CHANNEL_COLOURS.get(value, GREY))
            for value, label in Notice.Channel.choices
        ],
        stacked=True,
        label_heading=_("Jour"),
    )


def letters_per_batch() -> dict[str, Any]:
    """Letters and pages of the last ``BATCHES`` print batches, oldest first (one query)."""
    batches = list(PrintBatch.objects.order_by("-day").values("day", "letter_count", "page_count")[:BATCHES])[::-1]
    return chart(
        "letters-per-batch",
        _("Lettres et pages par lot d'impression"),
        [date_format(batch["day"], "SHORT_DATE_FORMAT") for batch in batches],
        [
            Series(_("Lettres"), [batch["letter_count"] for batch in batches], BLUE),
            Series(_("Pages"), [batch["page_count"] for batch in batches], GREEN),
        ],
        label_heading=_("Lot du"),
    )


def emergency_reviews_per_week() -> dict[str, Any]:
    """Emergency accesses (A7) per week over ``WEEKS`` weeks: awaiting review, and reviewed (one query)."""
    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    weeks = [monday - timedelta(weeks=offset) for offset in range(WEEKS - 1, -1, -1)]
    waiting = Q(reviewed_at__isnull=True)
    counts = {
        timezone.localtime(row["week"]).date(): row
        for row in Review.objects.filter(kind=Review.Kind.EMERGENCY, created_at__gte=_midnight(weeks[0]))
        .annotate(week=TruncWeek("created_at"))
        .order_by()
        .values("week")
        .annotate(waiting=Count("pk", filter=waiting), reviewed=Count("pk", filter=~waiting))
    }
    return chart(
        "emergency-reviews-per-week",
        _("Accès en urgence par semaine : en attente de revue et revus (12 dernières semaines)"),
        [_("semaine du %(day)s") % {"day": date_format(week, "SHORT_DATE_FORMAT")} for week in weeks],
        [
            Series(_("En attente de revue"), [counts.get(week, {}).get("waiting", 0) for week in weeks], RED),
            Series(_("Revus"), [counts.get(week, {}).get("reviewed", 0) for week in weeks], GREY),
        ],
        stacked=True,
        label_heading=_("Semaine"),
    )


CHARTS = (
    ("notifications.view_notice", notices_per_day),
    ("notifications.view_printbatch", letters_per_batch),
    ("access_control.view_review", emergency_reviews_per_week),
)


@require_GET
def staff_charts(request: HttpRequest) -> HttpResponse:
    """The charts this staff member may see; none at all is a refusal."""
    staff = signed_in_account(request)
    charts = [build() for permission, build in CHARTS if staff.has_perm(permission)]
    if not charts:
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": _("Graphiques"),
        "charts": charts,
        "may_see_curiosity": staff.has_perm("access_control.view_review"),
    }
    return TemplateResponse(request, "admin/charts.html", context)
