from django.urls import include, path

from patients import (
    api_token_views,
    views,
    views_access,
    views_account,
    views_apps,
    views_charts,
    views_documents,
    views_franceconnect,
    views_notifications,
    views_public,
    views_recovery,
    views_summary,
    views_trail,
)

app_name = "patients"

# The public paths /activer/, /opposition/, /trace/ and /confidentialite/ are printed in notices
# (notifications.content.PORTAL_PATHS): keep them.
urlpatterns = [
    path("", views.home, name="home"),
    path("connexion/", views.login, name="login"),
    path("connexion/verification/", views.verify, name="verify"),
    # Forgotten password, lost second factor (accounts.recovery); the letter's path is printed in it.
    path("connexion/oubli/", views_recovery.recover, name="recover"),
    path("connexion/oubli/code/", views_recovery.recover_code, name="recover_code"),
    path("connexion/oubli/second-facteur/", views_recovery.recover_second_factor, name="recover_second_factor"),
    path("connexion/oubli/mot-de-passe/", views_recovery.recover_password, name="recover_password"),
    path("connexion/oubli/courrier/", views_recovery.recover_letter, name="recover_letter"),
    path("connexion/oubli/courrier/code/", views_recovery.recover_with_letter, name="recover_with_letter"),
    # FranceConnect (issue 17): the redirect and post-logout URIs registered with FranceConnect (docs/sign-in.md).
    path("connexion/franceconnect/", views_franceconnect.start, name="franceconnect_start"),
    path("connexion/franceconnect/retour/", views_franceconnect.callback, name="franceconnect_callback"),
    path("connexion/franceconnect/deconnecte/", views_franceconnect.signed_out, name="franceconnect_signed_out"),
    path("connexion/franceconnect/introuvable/", views_franceconnect.refused, name="franceconnect_refused"),
    path("deconnexion/", views.logout, name="logout"),
    path("deconnexion/partout/", views.logout_everywhere, name="logout_everywhere"),
    # Before activation (L2, L4)
    path("opposition/", views_public.opposition, name="opposition"),
    path("opposition/confirmation/", views_public.opposition_done, name="opposition_done"),
    path("activer/", views_public.activation, name="activation"),
    path("activer/courriel/", views_public.activation_email, name="activation_email"),
    path("activer/second-facteur/", views_public.activation_second_factor, name="activation_second_factor"),
    path("activer/codes-de-secours/", views_public.backup_codes, name="backup_codes"),
    # Portal
    path("espace/", views.dashboard, name="dashboard"),
    path("espace/confirmation/", views_account.step_up, name="step_up"),
    path("espace/profil/", views_account.switch_profile, name="switch_profile"),
    path("espace/profil/activer/", views_account.activate_child, name="activate_child"),
    path("documents/", views_documents.document_list, name="documents"),
    path("documents/deposer/", views_documents.upload, name="upload"),
    path("documents/masquage/", views_documents.mask_documents, name="mask_documents"),
    path("documents/categories/", views_documents.mask_category, name="mask_category"),
    path("documents/<int:document_id>/", views_documents.document_detail, name="document"),
    path("documents/<int:document_id>/contenu/", views_documents.document_inline, name="document_inline"),
    path("documents/<int:document_id>/pages/<int:number>/", views_documents.document_page, name="document_page"),
    path("documents/<int:document_id>/telecharger/", views_documents.document_download, name="document_download"),
    path("documents/<int:document_id>/supprimer/", views_documents.delete_document, name="delete_document"),
    path("profil-medical/", views_summary.health_summary, name="health_summary"),
    path("profil-medical/ajouter/<str:kind>/", views_summary.add_entry, name="health_summary_add"),
    path("profil-medical/retirer/<int:entry_id>/", views_summary.remove_entry, name="health_summary_remove"),
    path("profil-medical/masquage/", views_summary.mask_summary, name="health_summary_mask"),
    path("confidentialite/", views_access.privacy, name="privacy"),
    path("confidentialite/bloquer/", views_access.block, name="block"),
    path("confidentialite/debloquer/<int:practitioner_id>/", views_access.unblock, name="unblock"),
    path("confidentialite/medecin-traitant/", views_access.treating_doctor, name="treating_doctor"),
    path("confidentialite/urgence/", views_access.emergency, name="emergency"),
    path("confidentialite/medecin-du-travail/", views_access.occupational, name="occupational"),
    path("confidentialite/droits-medecin-traitant/", views_access.treating_rights, name="treating_rights"),
    path("trace/", views_trail.trail, name="trail"),
    path("trace/graphiques/", views_charts.trail_charts, name="trail_charts"),
    path("trace/historique.csv", views_trail.trail_csv, name="trail_csv"),
    path("avis/", views_trail.notices, name="notices"),
    path("avis/centre/", views_notifications.centre, name="notification_centre"),
    path("avis/centre/tout-lu/", views_notifications.mark_all_read, name="notifications_read"),
    path("avis/centre/<str:kind>/<int:item_id>/", views_notifications.open_item, name="notification"),
    path("avis/preferences/", views_trail.notice_preferences, name="notice_preferences"),
    path("avis/lettres/<int:letter_id>/", views_trail.letter_pdf, name="letter_pdf"),
    path("mes-donnees/", views_account.my_data, name="my_data"),
    path("mes-donnees/export/", views_account.export, name="export"),
    path("mes-donnees/cloture/", views_account.close, name="close"),
    path("mes-donnees/suppression/", views_account.early_deletion, name="early_deletion"),
    path("mes-donnees/reouverture/", views_account.reopen, name="reopen"),
    path("mes-donnees/courriel/", views_account.email_change, name="email_change"),
    path("mes-donnees/franceconnect/", views_franceconnect.account, name="franceconnect_account"),
    path("jetons-api/", include(api_token_views)),
    # Connected apps (issue 17): the OAuth 2 authorisation endpoint is the consent page.
    path("applications/autoriser/", views_apps.authorise, name="authorise_app"),
    path("applications/", views_apps.connected_apps, name="connected_apps"),
    path(
        "applications/<int:connection_id>/retirer/", views_apps.revoke, name="connected_app_revoke"
    ),  # API tokens (issue 8, docs/api.md)
]
