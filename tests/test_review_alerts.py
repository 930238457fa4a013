"""A13: every practitioner access to a high-profile profile alerts the reviewers at once, by e-mail, with no
patient data; the alert survives a broker down at commit (sweep) and an SMTP failure (retry)."""
# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

import smtplib
from datetime import date

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import timezone

from access_control.alerts import SWEEP_AFTER, alert_review_task, send_review_alert, sweep_review_alerts
from access_control.api import open_record
from access_control.models import AccessRule, Review
from records.models import DocumentType, Profile, User
from tests.notify_fixtures import (  # noqa: F401  (fixtures)
    broker,
    david,
    nir_with_key,
    smtp_server,
    start_worker,
    wait_until,
)

JUSTIFICATION = "Patient inconscient aux urgences, antécédents inconnus."


@pytest.fixture
def reviewers(personas):
    """Karim Benali in the supervisors' group, as the demo seed puts him (the cast alone has no groups)."""
    personas.karim.groups.add(Group.objects.get(name="Superviseurs"))
    return personas


def _run_alerts_in_process(monkeypatch) -> list:
    """The broker hand-off replaced by a direct call of the task's function (its results are collected)."""
    sent = []
    monkeypatch.setattr(alert_review_task, "apply_async", lambda args, retry: sent.append(send_review_alert(*args)))
    return sent


@pytest.mark.django_db
def test_an_access_to_a_high_profile_profile_alerts_the_reviewers_without_patient_data__A13(
    reviewers, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    personas = reviewers
    sent = _run_alerts_in_process(monkeypatch)
    gerard = personas.gerard
    with django_capture_on_commit_callbacks(execute=True):
        assert open_record(personas.david, gerard).allowed
    review = Review.objects.get(kind=Review.Kind.HIGH_PROFILE, profile=gerard)
    assert sent == [True] and review.alerted_at is not None
    (message,) = mailoutbox
    assert message.to == [personas.karim.email]  # the reviewers: access_control.change_review, with an e-mail
    assert reverse("admin:access_control_review_change", args=[review.pk]) in message.body
    for secret in (gerard.birth_name, gerard.first_names.split()[0], gerard.nir, "Lambert", "David"):
        assert secret.casefold() not in (message.subject + message.body).casefold()
    assert send_review_alert(review.pk) is False and len(mailoutbox) == 1  # once only

    with django_capture_on_commit_callbacks(execute=True):  # an emergency access is listed, not mailed (A7)
        assert open_record(personas.david, personas.alice, mode="bris_de_glace", justification=JUSTIFICATION).allowed
    assert Review.objects.filter(kind=Review.Kind.EMERGENCY, profile=personas.alice).exists()
    assert sent == [True] and len(mailoutbox) == 1


@pytest.mark.django_db
def test_an_alert_lost_with_the_broker_is_sent_by_the_sweep__A13(
    reviewers, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    personas = reviewers

    def broker_down(*args, **kwargs):
        raise ConnectionError("the broker is down")

    monkeypatch.setattr(alert_review_task, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        assert open_record(personas.david, personas.gerard).allowed  # the access itself goes through
    review = Review.objects.get(kind=Review.Kind.HIGH_PROFILE, profile=personas.gerard)
    assert review.alerted_at is None and not mailoutbox

    sent = _run_alerts_in_process(monkeypatch)
    assert sweep_review_alerts(timezone.now()) == 0  # too recent: the task may still be on its way
    assert sweep_review_alerts(timezone.now() + SWEEP_AFTER) == 1
    assert sent == [True] and len(mailoutbox) == 1
    assert sweep_review_alerts(timezone.now() + SWEEP_AFTER) == 0


@pytest.mark.django_db
def test_an_smtp_failure_leaves_the_review_unalerted_for_a_retry__A13(
    reviewers, mailoutbox, django_capture_on_commit_callbacks, monkeypatch
):
    personas = reviewers
    with django_capture_on_commit_callbacks(execute=False):
        assert open_record(personas.david, personas.gerard).allowed
    review = Review.objects.get(kind=Review.Kind.HIGH_PROFILE, profile=personas.gerard)

    def smtp_down(self, fail_silently=False):
        raise smtplib.SMTPServerDisconnected("connection lost")

    with monkeypatch.context() as patched:
        patched.setattr(EmailMessage, "send", smtp_down)
        with pytest.raises(smtplib.SMTPException):
            send_review_alert(review.pk)
    review.refresh_from_db()
    assert review.alerted_at is None and not mailoutbox
    assert send_review_alert(review.pk) is True and len(mailoutbox) == 1
    assert alert_review_task.autoretry_for == (OSError, smtplib.SMTPException)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_alert_reaches_the_reviewers_through_the_worker__A13(david, smtp_server, start_worker):
    start_worker(smtp_server.port)
    reviewer = User.objects.create_user(
        username="karim.benali", password="not-used-here-1234", kind=User.Kind.STAFF, email="karim@cpam.example"
    )
    reviewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="access_control", codename="change_review")
    )
    # A profile without any address: its consultation notice is undeliverable, so the alert is the only e-mail.
    profile = Profile.objects.create(
        nir=nir_with_key("1560275056123"),
        birth_name="Lefebvre",
        first_names="Gérard",
        birth_date=date(1956, 2, 3),
        sex=Profile.Sex.MALE,
        state=Profile.State.OPEN,
        high_profile=True,
    )
    # Data migrations' rows do not survive an earlier transactional test's flush: make the matrix cell here.
    document_type, _ = DocumentType.objects.get_or_create(
        code="11502-2",
        defaults={"code_system": "LOINC", "label_fr": "CR de biologie", "label_en": "Lab report", "class_code": "10"},
    )
    AccessRule.objects.get_or_create(profession=david.profession, document_type=document_type)  # A2

    assert open_record(david, profile).allowed  # commits: the review id goes to Redis after commit
    (message,) = smtp_server.mailbox.wait_for(1)
    assert message["To"] == "karim@cpam.example"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Lefebvre" not in body and "Gérard" not in body and "Lambert" not in body
    review = Review.objects.get(profile=profile)
    assert f"/admin/access_control/review/{review.pk}/change/" in body
    wait_until(
        lambda: Review.objects.filter(pk=review.pk, alerted_at__isnull=False).exists(), message="the review alerted"
    )
