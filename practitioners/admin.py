"""Admin registrations for the practitioner directory."""

from django.contrib import admin

from .models import Practitioner, Profession


@admin.register(Profession)
class ProfessionAdmin(admin.ModelAdmin):
    list_display = ("code", "label_fr", "label_en", "is_doctor")


@admin.register(Practitioner)
class PractitionerAdmin(admin.ModelAdmin):
    list_display = ("rpps", "last_name", "first_name", "profession", "specialty", "status")
    list_filter = ("profession", "status", "is_samu_regulator", "is_occupational_physician", "is_insurer_physician")
    search_fields = ("=rpps", "last_name")
    list_select_related = ("profession",)
    raw_id_fields = ("user",)
