"""The access-control admin pages change things only through the traced actions (A2, A7, A13, T1)."""

from django.contrib.admin.sites import site
from django.contrib.messages.storage.fallback import FallbackStorage
from django.test import RequestFactory

from access_control import api
from access_control.models import AccessRule, Review, TrailEntry
from access_control.trail import NATIONAL_CHAIN
from practitioners.models import Profession
from records.models import DocumentType


def _request(user):
    request = RequestFactory().post("/admin/")
    request.user = user
    request.session = {}
    request._messages = FallbackStorage(request)
    return request


def test_matrix_edited_in_the_admin_goes_through_the_traced_action__A2(personas):
    model_admin = site._registry[AccessRule]
    rule = AccessRule(
        profession=Profession.objects.get(code="70"),
        document_type=DocumentType.objects.get(code="11502-2"),
        may_read=True,
    )
    model_admin.save_model(_request(personas.karim), rule, form=None, change=False)
    assert AccessRule.objects.get(pk=rule.pk).may_read
    assert TrailEntry.objects.filter(profile_id=NATIONAL_CHAIN, action="access_rule", detail="70x11502-2=read").exists()
    model_admin.deny_reading(_request(personas.karim), AccessRule.objects.filter(pk=rule.pk))
    assert not AccessRule.objects.get(pk=rule.pk).may_read
    assert not model_admin.has_delete_permission(_request(personas.karim), rule)


def test_reviews_are_marked_through_the_action_and_traced__A7_A13(personas):
    decision = api.open_record(personas.david, personas.gerard)
    review = Review.objects.get(trail_entry_id=decision.trail_entry.pk)
    model_admin = site._registry[Review]
    request = _request(personas.karim)
    assert not model_admin.has_change_permission(request, review)  # no edit form, only the action
    model_admin.mark_reviewed(request, Review.objects.all())
    review.refresh_from_db()
    assert review.reviewed_by == personas.karim and review.reviewed_at is not None
    assert TrailEntry.objects.filter(profile=personas.gerard, action="review", detail=f"review:{review.pk}").exists()
