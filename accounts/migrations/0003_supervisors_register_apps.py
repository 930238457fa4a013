"""Supervisors register connected apps in the admin site (issue 17), not only a superuser.

They add and change an app (django-oauth-toolkit's ``Application``) with its listing, and see the patients'
connections. Nobody on staff gets the authorisation server's codes and tokens: they are secrets, and they change
only through sign-in and revocation.
"""

from django.db import migrations

SUPERVISORS = [
    "oauth2_provider.view_application",
    "oauth2_provider.add_application",
    "oauth2_provider.change_application",
    "accounts.view_applisting",
    "accounts.add_applisting",
    "accounts.change_applisting",
    "accounts.view_appconnection",
]
GRANTS = {"Superviseurs": SUPERVISORS}


def _permissions(apps, names):
    Permission = apps.get_model("auth", "Permission")
    wanted = []
    for name in names:
        app_label, codename = name.split(".")
        wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return wanted


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps, using=schema_editor.connection.alias)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    for group_name, names in GRANTS.items():
        for group in Group.objects.filter(name=group_name):
            group.permissions.add(*_permissions(apps, names))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for group_name, names in GRANTS.items():
        for group in Group.objects.filter(name=group_name):
            group.permissions.remove(*_permissions(apps, names))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_connected_apps"),
        ("records", "0004_supervisors_see_api_tokens"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
