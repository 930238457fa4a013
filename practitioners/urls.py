from django.urls import path

app_name = "practitioners"

urlpatterns: list = []
