from django.urls import path

from . import views

app_name = "practitioners"

urlpatterns = [
    path("", views.home, name="home"),
    path("connexion/", views.login, name="login"),
    path("connexion/verification/", views.verify, name="verify"),
    path("connexion/application/", views.enrol, name="enrol"),
    path("codes-de-secours/", views.backup_codes, name="backup_codes"),
    path("codes-de-secours/renouveler/", views.renew_backup_codes, name="renew_backup_codes"),
]
