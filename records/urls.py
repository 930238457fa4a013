from django.urls import path

from . import views

app_name = "records"

urlpatterns = [
    path("", views.home, name="home"),
    path("connexion/", views.login, name="login"),
    path("connexion/verification/", views.verify, name="verify"),
    path("deconnexion/", views.logout, name="logout"),
    path("deconnexion/partout/", views.logout_everywhere, name="logout_everywhere"),
    path("espace/", views.dashboard, name="dashboard"),
]
