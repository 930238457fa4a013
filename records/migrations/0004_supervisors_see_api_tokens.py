"""Supervisors may view and revoke API tokens in the admin (the revocation is a traced action)."""

from django.db import migrations


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps, using=schema_editor.connection.alias)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="access_control", codename="view_apitoken")
    for group in Group.objects.filter(name="Superviseurs"):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(content_type__app_label="access_control", codename="view_apitoken").first()
    if permission is not None:
        for group in Group.objects.filter(name="Superviseurs"):
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0003_staff_groups"),
        ("access_control", "0005_api_tokens"),
    ]
    operations = [migrations.RunPython(grant, revoke)]
