"""Admin registrations for accounts, profiles, the catalogue and documents.

Profiles and documents are read-only here: every change to them is an action (records.actions,
access_control.actions) so that it is validated and traced (L9, T1). Documents' contents are never shown.
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import Document, DocumentType, Profile, User


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class CarnetUserAdmin(UserAdmin):
    list_display = ("username", "email", "kind", "is_staff", "is_active", "last_login")
    list_filter = ("kind", "is_staff", "is_active")
    fieldsets = (*UserAdmin.fieldsets, ("Carnet", {"fields": ("kind", "preferred_language")}))


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdmin):
    list_display = ("id", "state", "postal_code", "preferred_channel", "high_profile", "created_at")
    list_filter = ("state", "preferred_channel", "high_profile", "emergency_access_opt_out")
    search_fields = ("=nir",)  # exact NIR only: no browsing by name
    show_full_result_count = False
    exclude = ("provisional_code_hash",)


@admin.register(DocumentType)
class DocumentTypeAdmin(ReadOnlyAdmin):
    list_display = ("code", "code_system", "label_fr", "label_en", "class_code")
    list_filter = ("class_code", "code_system")
    search_fields = ("code", "label_fr", "label_en")


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ("id", "document_type", "author_kind", "deposited_at", "size", "content_type")
    list_filter = ("author_kind", "content_type")
    list_select_related = ("document_type",)
    show_full_result_count = False
    exclude = ("wrapped_key", "title", "original_name")
