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
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import logout
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from accounts.auth import refuse_if_closed, retry_after, session_is_current, staff_gate, stamp_session
from accounts.second_factors import CodeCheck, describe_refusal, device_for_code, normalise_code, verify_code
from records.models import User

# Error codes that count as a failed attempt (a missing code is a step, not a failure).
_FAILURE_CODES = {"invalid_login", "inactive", "invalid_token", None}


class CarnetAdminAuthenticationForm(OTPAdminAuthenticationForm):  # type: ignore[misc]  # django_otp ships no types
    """Username, password and one code: the authenticator app's, or a backup code, in any printed form.

    django-otp's form makes the user pick a device when they have two (in English: "Please select a
    device."); this one picks it by the code's shape, as the portals do (``accounts.second_factors``), so a
    backup code typed as printed (``demo-0001``) works and the page stays in French.
    """

    otp_device = None  # the device follows from the code
    otp_challenge = None
    otp_token = forms.CharField(
        label=_("Code de vérification"),
        required=False,
        max_length=32,
        help_text=_("Le code à 6 chiffres de votre application d'authentification, ou un code de secours."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}),
    )

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        gate = staff_gate(self.request, username)
        if username:
            refuse_if_closed(gate)
        try:
            cleaned: dict[str, Any] = super().clean()
            return cleaned
        except ValidationError as exc:
            if getattr(exc, "code", None) in _FAILURE_CODES:
                gate.record_failure()
            raise

    def clean_otp(self, user: User | None) -> None:
        if user is None:
            return
        user.otp_device = None  # type: ignore[attr-defined]  # django_otp's login reads the device from the user
        code = normalise_code(self.cleaned_data.get("otp_token") or "")
        if not code:
            raise ValidationError(
                _("Saisissez le code de votre application d'authentification ou un code de secours."),
                code="token_required",
            )
        device = device_for_code(user, code, allow_email=False)
        outcome = verify_code(device, code) if device is not None else CodeCheck.REFUSED
        if outcome != CodeCheck.ACCEPTED:
            raise ValidationError(
                describe_refusal(outcome), code="invalid_token" if outcome == CodeCheck.REFUSED else str(outcome)
            )
        user.otp_device = device  # type: ignore[attr-defined]  # django_otp's login reads the device from the user


DASHBOARD_CACHE_KEY = "carnet:admin-dashboard"
DASHBOARD_CACHE_SECONDS = 60  # the counts scan large tables: computed at most once a minute


def dashboard_figures() -> dict[str, Any]:
    """Counts for the admin index (issue 7): no personal data, four queries, cached a minute."""
    from access_control.models import Review
    from notifications.models import Notice, PrintBatch
    from records.models import Profile

    cached: dict[str, Any] | None = cache.get(DASHBOARD_CACHE_KEY)
    if cached is not None:
        return cached
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


class CarnetAdminSite(OTPAdminSite):  # type: ignore[misc]  # django_otp ships no types
    site_header = _("Carnet — administration")
    site_title = _("Carnet — administration")
    index_title = _("Administration")
    login_form = CarnetAdminAuthenticationForm
    login_template = "admin/carnet_login.html"

    def has_permission(self, request: HttpRequest) -> bool:
        if request.user.is_authenticated and not session_is_current(request):
            logout(request)  # signed out everywhere: this session is over
            return False
        user = request.user
        return bool(super().has_permission(request)) and isinstance(user, User) and user.kind == User.Kind.STAFF

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        response: TemplateResponse = super().index(request, {"dashboard": dashboard_figures(), **(extra_context or {})})
        return response

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response: HttpResponse = super().login(request, extra_context)
        if request.method == "POST" and response.status_code == 302 and request.user.is_authenticated:
            stamp_session(request, request.user)
            staff_gate(request, request.user.get_username()).record_success()
        form = getattr(response, "context_data", {}).get("form")
        if request.method == "POST" and form is not None and form.is_bound:
            wait = max((retry_after(error) for error in form.non_field_errors().as_data()), default=0)
            if wait:
                response.status_code = 429
                response["Retry-After"] = str(wait)
        return response

    def get_urls(self) -> list[URLPattern | URLResolver]:
        from accounts.admin_charts import staff_charts
        from accounts.admin_desk import signin_desk

        urls = [
            path("connexion/", self.admin_view(signin_desk), name="signin_desk"),
            path("graphiques/", self.admin_view(staff_charts), name="charts"),
        ]
        inherited: list[URLPattern | URLResolver] = super().get_urls()
        return urls + inherited


admin.site.__class__ = CarnetAdminSite
site = admin.site
