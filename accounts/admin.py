"""Connected apps in the admin site (issue 17): staff register an app with its listing in one form.

django-oauth-toolkit registers its own models on the admin site; its application form gains the listing the
consent page shows (publisher, description, website). See docs/sign-in.md, "Registering a connected app".
"""

from django.contrib import admin
from oauth2_provider.admin import ApplicationAdmin
from oauth2_provider.models import Application

from .models import AppConnection, AppListing


class AppListingInline(admin.StackedInline):  # type: ignore[type-arg]  # the stubs' generic needs a model argument
    model = AppListing
    can_delete = False
    extra = 1
    max_num = 1


class CarnetApplicationAdmin(ApplicationAdmin):  # type: ignore[misc]  # django-oauth-toolkit: untyped
    inlines = [AppListingInline]


admin.site.unregister(Application)
admin.site.register(Application, CarnetApplicationAdmin)


@admin.register(AppConnection)
class AppConnectionAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read only: a connection is made and revoked by its patient (the trail says when, T1)."""

    list_display = ("application", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("application",)
    fields = ("application", "scope", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
