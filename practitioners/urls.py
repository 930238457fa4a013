from django.urls import include, path

from . import api_token_views, views, views_signin

app_name = "practitioners"

urlpatterns = [
    path("", views.home, name="home"),
    path("connexion/", views_signin.login, name="login"),
    path("connexion/verification/", views_signin.verify, name="verify"),
    path("connexion/application/", views_signin.enrol, name="enrol"),
    # Pro Santé Connect (issue 17): the redirect and post-logout URIs registered with PSC (docs/sign-in.md).
    path("connexion/psc/", views_signin.psc_start, name="psc_start"),
    path("connexion/psc/retour/", views_signin.psc_callback, name="psc_callback"),
    path("connexion/psc/deconnecte/", views_signin.psc_signed_out, name="psc_signed_out"),
    path("connexion/oubli/", views_signin.recover, name="recover"),
    path("connexion/oubli/code/", views_signin.recover_code, name="recover_code"),
    path("connexion/oubli/second-facteur/", views_signin.recover_second_factor, name="recover_second_factor"),
    path("connexion/oubli/mot-de-passe/", views_signin.recover_password, name="recover_password"),
    path("codes-de-secours/", views_signin.backup_codes, name="backup_codes"),
    path("codes-de-secours/renouveler/", views_signin.renew_backup_codes, name="renew_backup_codes"),
    # The portal: the patient travels as a session token, never as a NIR (practitioners.session).
    path("recherche/", views.find_patient, name="find"),
    path("recents/<int:profile_id>/ouvrir/", views.recent_open, name="recent_open"),
    path("patient/<str:token>/", views.patient, name="patient"),
    path("patient/<str:token>/urgence/", views.emergency, name="emergency"),
    path("patient/<str:token>/dossier/", views.record, name="record"),
    path("patient/<str:token>/documents/<int:document_id>/", views.document, name="document"),
    path("patient/<str:token>/documents/<int:document_id>/contenu/", views.document_content, name="document_content"),
    path(
        "patient/<str:token>/documents/<int:document_id>/pages/<int:number>/",
        views.document_page,
        name="document_page",
    ),
    path(
        "patient/<str:token>/documents/<int:document_id>/telecharger/",
        views.document_download,
        name="document_download",
    ),
    path(
        "patient/<str:token>/documents/<int:document_id>/rendre-visible/",
        views.release_hold,
        name="release_hold",
    ),
    path("patient/<str:token>/depot/", views.deposit, name="deposit"),
    path("depot/", views.deposit_by_identity, name="deposit_by_identity"),
    path("mes-patients/", views.my_patients, name="my_patients"),
    path("mes-patients/<int:profile_id>/ouvrir/", views.my_patient_open, name="my_patient_open"),
    path("mes-patients/<int:profile_id>/trace/", views.patient_trail, name="patient_trail"),
    path("activite/", views.activity, name="activity"),
    path("jetons-api/", include(api_token_views)),  # API tokens (issue 8, docs/api.md)
]
