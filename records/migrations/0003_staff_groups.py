"""Staff groups of the admin site and their permissions (issue 7).

- "Agents" (health-insurance agents at the counter and in the back office): look a profile up, record the
  requests people make (opposition, closure at their request, early deletion, re-opening, a new provisional
  code), run the roster enrolment, read the directory, the notices, letters and print batches, the trail, and
  handle the review queue.
- "Superviseurs": everything agents do, plus the decisions (suspension and its lifting, closure decided by the
  health insurance, death), the practitioner directory (import, suspension, markers) and the access matrix.

Nobody gets add/change/delete on the trail, documents, notices or letters: those change only through actions.
The custom permissions are created here (not in model Meta) so that no model of another app has to change.
"""

from django.db import migrations

CUSTOM_PERMISSIONS = {
    ("records", "profile"): [
        ("enrol_profiles", "Inscrire des profils depuis le référentiel (import)"),
        ("handle_counter_requests", "Traiter les demandes des personnes (opposition, clôture, suppression…)"),
        ("decide_lifecycle", "Décider suspensions, clôtures administratives et décès"),
    ],
    ("practitioners", "practitioner"): [
        ("import_directory", "Importer l'annuaire des professionnels"),
        ("suspend_practitioner", "Suspendre ou rétablir un professionnel"),
    ],
}

AGENTS = [
    "records.view_profile",
    "records.enrol_profiles",
    "records.handle_counter_requests",
    "records.view_documenttype",
    "practitioners.view_practitioner",
    "practitioners.view_profession",
    "access_control.view_accessrule",
    "access_control.view_documentcategory",
    "access_control.view_trailentry",
    "access_control.view_review",
    "access_control.change_review",
    "notifications.view_notice",
    "notifications.view_letter",
    "notifications.view_printbatch",
    "notifications.change_printbatch",
]
SUPERVISORS = [
    *AGENTS,
    "records.decide_lifecycle",
    "practitioners.change_practitioner",
    "practitioners.import_directory",
    "practitioners.suspend_practitioner",
    "access_control.add_accessrule",
    "access_control.change_accessrule",
]
GROUPS = {"Agents": AGENTS, "Superviseurs": SUPERVISORS}


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # The default permissions are normally created after migrate; create them now to grant them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps, using=schema_editor.connection.alias)
        app_config.models_module = None
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for (app_label, model), permissions in CUSTOM_PERMISSIONS.items():
        content_type, _created = ContentType.objects.get_or_create(app_label=app_label, model=model)
        for codename, name in permissions:
            Permission.objects.update_or_create(
                content_type=content_type, codename=codename, defaults={"name": name}
            )
    for group_name, permission_names in GROUPS.items():
        group, _created = Group.objects.get_or_create(name=group_name)
        permissions = []
        for permission_name in permission_names:
            app_label, codename = permission_name.split(".")
            permissions.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(permissions)


def remove_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    Group.objects.filter(name__in=GROUPS).delete()
    for (app_label, _model), permissions in CUSTOM_PERMISSIONS.items():
        Permission.objects.filter(
            content_type__app_label=app_label, codename__in=[codename for codename, _name in permissions]
        ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0002_document_types"),
        ("practitioners", "0003_professions"),
        ("access_control", "0004_access_matrix"),
        ("notifications", "0004_printbatch_notice_enqueued_at_letter_batchfile"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
