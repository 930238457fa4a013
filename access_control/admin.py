"""Admin pages for the access rules, the trail and the review queue.

Staff edit only the matrix (A2), through ``do_set_access_rule`` so that every change is traced; they mark
emergency and high-profile accesses as reviewed (A7, A13) through ``do_review_access``. Everything else here is
a patient's decision or the trail itself, shown read-only (T2: the trail is append-only).
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .actions import do_review_access, do_set_access_rule
from .models import AccessRule, Block, CategoryMask, DocumentCategory, OccupationalAuthorisation, Review, TrailEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessRule)
class AccessRuleAdmin(admin.ModelAdmin):
    """A2: one row per profession and document type; a pair absent from the table is denied."""

    list_display = ("profession", "document_type", "may_read")
    list_filter = ("may_read", "profession", "document_type__class_code")
    search_fields = ("document_type__code", "document_type__label_fr")
    list_select_related = ("profession", "document_type")
    ordering = ("profession__code", "document_type__code")
    actions = ["allow_reading", "deny_reading"]

    def get_readonly_fields(self, request, obj=None):
        return ("profession", "document_type") if obj is not None else ()

    def has_delete_permission(self, request, obj=None):
        return False  # deny a pair instead: the change is traced

    def save_model(self, request, obj, form, change):
        rule = do_set_access_rule(obj.profession, obj.document_type, obj.may_read, actor=request.user)
        obj.pk = rule.pk

    def _set(self, request, queryset, may_read: bool):
        for rule in queryset.select_related("profession", "document_type"):
            do_set_access_rule(rule.profession, rule.document_type, may_read, actor=request.user)
        self.message_user(request, _("Matrice d'accès mise à jour."), messages.SUCCESS)

    @admin.action(description=_("Autoriser la lecture"))
    def allow_reading(self, request, queryset):
        self._set(request, queryset, True)

    @admin.action(description=_("Interdire la lecture"))
    def deny_reading(self, request, queryset):
        self._set(request, queryset, False)


@admin.register(DocumentCategory)
class DocumentCategoryAdmin(ReadOnlyAdmin):
    list_display = ("code", "label_fr", "label_en")
    filter_horizontal = ("document_types",)


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = ("profile_id", "practitioner", "created_at")
    list_select_related = ("practitioner",)
    show_full_result_count = False


@admin.register(CategoryMask)
class CategoryMaskAdmin(ReadOnlyAdmin):
    list_display = ("profile_id", "category", "created_at")
    list_select_related = ("category",)
    show_full_result_count = False


@admin.register(OccupationalAuthorisation)
class OccupationalAuthorisationAdmin(ReadOnlyAdmin):
    list_display = ("profile_id", "practitioner", "granted_at")
    list_select_related = ("practitioner",)
    show_full_result_count = False


@admin.register(TrailEntry)
class TrailEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "profile_id", "seq", "actor_kind", "actor_name", "action", "mode", "outcome", "reason")
    list_filter = ("outcome", "mode", "actor_kind", "action")
    search_fields = ("=profile__id", "=actor_rpps")
    date_hierarchy = "at"
    show_full_result_count = False
    ordering = ("-at",)


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    """A7, A13: the queue of emergency and high-profile accesses, oldest unreviewed first."""

    list_display = ("created_at", "kind", "profile_id", "practitioner", "reviewed_at", "reviewed_by")
    list_filter = ("kind", ("reviewed_at", admin.EmptyFieldListFilter))
    list_select_related = ("practitioner", "reviewed_by")
    ordering = ("reviewed_at", "created_at")
    show_full_result_count = False
    actions = ["mark_reviewed"]

    def has_change_permission(self, request, obj=None):
        # The changelist and its action for those allowed to change reviews; never an edit form (the action
        # is the only way a review changes, and it is traced).
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request)

    @admin.action(description=_("Marquer comme revu"), permissions=["change"])
    def mark_reviewed(self, request, queryset):
        done = 0
        for review in queryset.filter(reviewed_at__isnull=True):
            try:
                do_review_access(review, actor=request.user)
            except ValidationError as error:
                self.message_user(request, "; ".join(error.messages), messages.ERROR)
                return
            done += 1
        self.message_user(request, _("%(count)d accès revus.") % {"count": done}, messages.SUCCESS)
