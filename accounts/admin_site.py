"""The staff door: the Django admin behind django-otp, and its dashboard.

Only active staff users (``is_staff`` and an account of kind ``staff``: a patient or practitioner account
flagged staff by mistake gets nothing) verified by one of their django-otp devices (TOTP or backup code) get
in (``OTPAdminSite``). What each one may see and do comes from their group, "Agents" or "Superviseurs"
(``records/migrations/0003_staff_groups``). The login form is throttled like the other doors (``plumbing.throttling``) and a
successful login stamps the session epoch, so "sign out everywhere" ends admin sessions too.

The default ``admin.site`` instance keeps its registry (every app registers on it); only its class changes.
Bootstrap a first staff member's second factor with ``manage.py addstatictoken <username>``.
"""

from datetime import datetime, time, timedelta

from django.contrib import admin
from django.contrib.auth import logout
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from accounts.auth import THROTTLED_MESSAGE, session_is_current, staff_gate, stamp_session
from records.models import User

# Error codes that count as a failed attempt (a missing code or device choice is a step, not a failure).
_FAILURE_CODES = {"invalid_login", "inactive", "invalid_token", None}


class CarnetAdminAuthenticationForm(OTPAdminAuthenticationForm):
    def clean(self):
        username = self.cleaned_data.get("username") or ""
        gate = staff_gate(self.request, username)
        if username and gate.is_closed():
            raise ValidationError(THROTTLED_MESSAGE, code="throttled")
        try:
            return super().clean()
        except ValidationError as exc:
            if getattr(exc, "code", None) in _FAILURE_CODES:
                gate.record_failure()
            raise


DASHBOARD_CACHE_KEY = "carnet:admin-dashboard"
DASHBOARD_CACHE_SECONDS = 60  # the counts scan large tables: computed at most once a minute


def dashboard_figures() -> dict:
    """Counts for the admin index (issue 7): no personal data, four queries, cached a minute."""
    from access_control.models import Review
    from notifications.models import Notice, PrintBatch
    from records.models import Profile

    figures = cache.get(DASHBOARD_CACHE_KEY)
    if figures is not None:
        return figures
    today = timezone.localdate()
    week_start = timezone.make_aware(datetime.combine(today - timedelta(days=today.weekday()), time.min))
    states = Profile.State
    counts = Profile.objects.aggregate(
        **{f"state_{state}": Count("pk", filter=Q(state=state)) for state in states.values},
        activations=Count("pk", filter=Q(activated_at__gte=week_start)),
        oppositions=Count("pk", filter=Q(opposed_at__gte=week_start)),
    )
    by_status = dict(Notice.objects.order_by().values_list("status").annotate(n=Count("pk")))
    batch = PrintBatch.objects.filter(day=today).values("letter_count", "page_count", "status").first()
    figures = {
        "profiles": [(label, counts[f"state_{value}"]) for value, label in states.choices],
        "profiles_total": sum(counts[f"state_{value}"] for value in states.values),
        "activations_this_week": counts["activations"],
        "oppositions_this_week": counts["oppositions"],
        "week_start": week_start,
        "notices": [(label, by_status.get(value, 0)) for value, label in Notice.Status.choices],
        "letters_today": batch["letter_count"] if batch else 0,
        "pages_today": batch["page_count"] if batch else 0,
        "open_reviews": Review.objects.filter(reviewed_at__isnull=True).count(),
        "computed_at": timezone.now(),
    }
    cache.set(DASHBOARD_CACHE_KEY, figures, DASHBOARD_CACHE_SECONDS)
    return figures


class CarnetAdminSite(OTPAdminSite):
    site_header = _("Carnet — administration")
    site_title = _("Carnet — administration")
    index_title = _("Administration")
    login_form = CarnetAdminAuthenticationForm

    def has_permission(self, request):
        if request.user.is_authenticated and not session_is_current(request):
            logout(request)  # signed out everywhere: this session is over
            return False
        return super().has_permission(request) and request.user.kind == User.Kind.STAFF

    def index(self, request, extra_context=None):
        return super().index(request, {"dashboard": dashboard_figures(), **(extra_context or {})})

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        if request.method == "POST" and response.status_code == 302 and request.user.is_authenticated:
            stamp_session(request, request.user)
            staff_gate(request, request.user.get_username()).record_success()
        return response


admin.site.__class__ = CarnetAdminSite
site = admin.site
