"""The staff door: the Django admin behind django-otp.

Only active staff users verified by one of their django-otp devices (TOTP or backup code) get in
(``OTPAdminSite``). The login form is throttled like the other doors (``records.throttling``) and a
successful login stamps the session epoch, so "sign out everywhere" ends admin sessions too.

The default ``admin.site`` instance keeps its registry (every app registers on it); only its class changes.
Bootstrap a first staff member's second factor with ``manage.py addstatictoken <username>``.
"""

from django.contrib import admin
from django.contrib.auth import logout
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from records.auth import THROTTLED_MESSAGE, session_is_current, staff_gate, stamp_session

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


class CarnetAdminSite(OTPAdminSite):
    site_header = _("Carnet — administration")
    site_title = _("Carnet — administration")
    index_title = _("Administration")
    login_form = CarnetAdminAuthenticationForm

    def has_permission(self, request):
        if request.user.is_authenticated and not session_is_current(request):
            logout(request)  # signed out everywhere: this session is over
            return False
        return super().has_permission(request)

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        if request.method == "POST" and response.status_code == 302 and request.user.is_authenticated:
            stamp_session(request, request.user)
            staff_gate(request, request.user.get_username()).record_success()
        return response


admin.site.__class__ = CarnetAdminSite
site = admin.site
