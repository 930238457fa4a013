"""Which practitioners may read a patient's health summary: the rules of a patient-deposited synthesis (A2-A12).

The summary (``records.HealthSummary``) is read exactly as a document of the type
``records.health_summary.SUMMARY_DOCUMENT_TYPE`` deposited by the patient would be: the conditions below are those
of ``fast_sql.visibility_conditions`` with the summary's columns in place of the document's, and no author
exception (the author is the patient). Holds (A8) and the minor's secret (A9) concern the patient's side only,
as for documents. ``api.health_summary_for_practitioner`` is the door that applies them.
"""

from django.db.models import Exists, OuterRef, Q
from django.db.models.expressions import Combinable

from records.health_summary import SUMMARY_DOCUMENT_TYPE
from records.models import Profile

from .fast_sql import openable_profiles
from .models import AccessRule, CategoryMask, TreatingRightsGrant


def summary_visibility(practitioner_id: int, profile_id: int, mode: str) -> list[Q | Combinable]:
    """Conditions on ``HealthSummary`` rows: the profile's summary, if this practitioner may read it in this mode."""
    treating = Profile.objects.filter(pk=profile_id, treating_doctor_id=practitioner_id)
    granted = TreatingRightsGrant.objects.filter(profile_id=profile_id, practitioner_id=practitioner_id)
    privileged = Exists(treating) | Exists(granted)  # A4, A6
    return [
        Q(profile_id=profile_id),
        Exists(openable_profiles(practitioner_id, mode).filter(pk=OuterRef("profile_id"))),  # L, A1, A3, A5, A7
        Exists(
            AccessRule.objects.filter(
                profession__practitioners=practitioner_id,
                document_type__code=SUMMARY_DOCUMENT_TYPE,
                may_read=True,
            )
        ),  # A2: default-deny, as for the document type
        privileged | Q(masked_at__isnull=True),  # A4
        privileged
        | ~Exists(
            CategoryMask.objects.filter(
                profile_id=OuterRef("profile_id"), category__document_types__code=SUMMARY_DOCUMENT_TYPE
            )
        ),  # A12
    ]
