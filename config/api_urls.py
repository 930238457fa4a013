"""URLs of the REST API (``/api/v1/``, its OpenAPI schema and documentation page) and of FHIR (``/fhir/``).

Included from ``config.urls``. Unknown paths under /api/ and /fhir/ answer in the interface's own error shape.
"""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from fhir_server import patient_context as app
from fhir_server import views as fhir
from fhir_server.http import not_found as fhir_not_found
from patients import api as patient
from patients import api_privacy as privacy
from plumbing.api_errors import not_found
from practitioners import api as pro

PRO = "api/v1/practitioner/"


def fhir_path(route: str, view, app_view, name: str):
    """A FHIR route: ``app_view`` answers a connected app's token (issue 17), ``view`` everyone else."""
    return path(route, app.routed(view.as_view(), app_view.as_view()), name=name)


PATIENT = "api/v1/patient/profiles/<int:profile_id>/"
DOCUMENT = "documents/<int:document_id>/"

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Practitioners: the patient travels as a handle (access_control.handles), never as a NIR.
    path(f"{PRO}patients/search/", pro.PatientSearch.as_view(), name="api-pro-search"),
    path(f"{PRO}patients/<str:handle>/open/", pro.OpenRecord.as_view(), name="api-pro-open"),
    path(f"{PRO}patients/<str:handle>/documents/", pro.DocumentList.as_view(), name="api-pro-documents"),
    path(f"{PRO}patients/<str:handle>/{DOCUMENT}", pro.DocumentDetail.as_view(), name="api-pro-document"),
    path(f"{PRO}patients/<str:handle>/{DOCUMENT}content/", pro.DocumentContent.as_view(), name="api-pro-content"),
    path(f"{PRO}patients/<str:handle>/{DOCUMENT}release-hold/", pro.ReleaseHold.as_view(), name="api-pro-release"),
    path(f"{PRO}patients/<str:handle>/trail/", pro.PatientTrail.as_view(), name="api-pro-trail"),
    path(f"{PRO}deposits/", pro.IdentityDeposit.as_view(), name="api-pro-deposit"),
    path(f"{PRO}my-patients/", pro.MyPatients.as_view(), name="api-pro-my-patients"),
    path(f"{PRO}activity/", pro.Activity.as_view(), name="api-pro-activity"),
    # Patients: the profiles they manage (L10).
    path("api/v1/patient/profiles/", patient.Profiles.as_view(), name="api-patient-profiles"),
    path(PATIENT, patient.ProfileDetail.as_view(), name="api-patient-profile"),
    path(f"{PATIENT}documents/", patient.Documents.as_view(), name="api-patient-documents"),
    path(f"{PATIENT}{DOCUMENT}", patient.DocumentDetail.as_view(), name="api-patient-document"),
    path(f"{PATIENT}{DOCUMENT}content/", patient.DocumentContent.as_view(), name="api-patient-content"),
    path(f"{PATIENT}{DOCUMENT}mask/", patient.DocumentMask.as_view(), name="api-patient-mask"),
    path(f"{PATIENT}categories/", patient.Categories.as_view(), name="api-patient-categories"),
    path(f"{PATIENT}categories/<slug:code>/mask/", patient.CategoryMaskView.as_view(), name="api-patient-category"),
    path(f"{PATIENT}blocks/", privacy.Blocks.as_view(), name="api-patient-blocks"),
    path(f"{PATIENT}blocks/<str:rpps>/", privacy.BlockDetail.as_view(), name="api-patient-block"),
    path(f"{PATIENT}treating-rights/", privacy.TreatingRights.as_view(), name="api-patient-treating-rights"),
    path(
        f"{PATIENT}treating-rights/<str:rpps>/",
        privacy.TreatingRightsDetail.as_view(),
        name="api-patient-treating-right",
    ),
    path(
        f"{PATIENT}occupational-authorisations/",
        privacy.OccupationalAuthorisations.as_view(),
        name="api-patient-occupational-authorisations",
    ),
    path(
        f"{PATIENT}occupational-authorisations/<str:rpps>/",
        privacy.OccupationalAuthorisationDetail.as_view(),
        name="api-patient-occupational-authorisation",
    ),
    path(f"{PATIENT}treating-doctor/", privacy.TreatingDoctor.as_view(), name="api-patient-treating-doctor"),
    path(f"{PATIENT}emergency-access/", privacy.EmergencyAccess.as_view(), name="api-patient-emergency"),
    path(f"{PATIENT}preferences/", patient.Preferences.as_view(), name="api-patient-preferences"),
    path(f"{PATIENT}trail/", patient.Trail.as_view(), name="api-patient-trail"),
    path(f"{PATIENT}notices/", patient.Notices.as_view(), name="api-patient-notices"),
    path(f"{PATIENT}letters/<int:letter_id>/", patient.LetterPdf.as_view(), name="api-patient-letter"),
    re_path(r"^api/", not_found),
    # FHIR R4
    path("fhir", fhir.Transaction.as_view(), name="fhir-transaction-bare"),
    path("fhir/", fhir.Transaction.as_view(), name="fhir-transaction"),  # IHE ITI-65 at [base]
    path("fhir/metadata", fhir.Metadata.as_view(), name="fhir-metadata"),
    path("fhir/Practitioner/<str:resource_id>", fhir.PractitionerRead.as_view(), name="fhir-practitioner"),
    # A connected app's token (SMART on FHIR, issue 17) goes to the patient context; every other caller to the views.
    path(".well-known/smart-configuration", app.smart_configuration, name="smart-configuration-root"),
    path("fhir/.well-known/smart-configuration", app.smart_configuration, name="smart-configuration"),
    fhir_path("fhir/Patient", fhir.PatientSearch, app.AppPatientSearch, "fhir-patient"),
    path("fhir/Patient/_search", fhir.PatientSearch.as_view(), name="fhir-patient-search"),
    fhir_path("fhir/Patient/<str:resource_id>", fhir.PatientRead, app.AppPatientRead, "fhir-patient-read"),
    fhir_path("fhir/DocumentReference", fhir.DocumentReferences, app.AppDocumentReferences, "fhir-documents"),
    path("fhir/DocumentReference/_search", fhir.DocumentReferenceSearch.as_view(), name="fhir-documents-search"),
    fhir_path(
        "fhir/DocumentReference/<str:resource_id>",
        fhir.DocumentReferenceRead,
        app.AppDocumentReferenceRead,
        "fhir-document",
    ),
    fhir_path("fhir/Binary/<str:resource_id>", fhir.BinaryRead, app.AppBinaryRead, "fhir-binary"),
    fhir_path("fhir/AuditEvent", fhir.AuditEvents, app.AppAuditEvents, "fhir-audit-events"),
    re_path(r"^fhir/", fhir_not_found),
]
