"""Staff members of the admin site, in the groups of ``records/migrations/0003_staff_groups``.

Import the fixtures by their ``fixture_*`` names; pytest registers them under the short names
(``agent``, ``supervisor``, ``agent_client``, ``supervisor_client``) that the tests take as arguments.

A transactional test's flush empties every table, the migration's groups and custom permissions included
(Django re-creates only the default permissions afterwards), so ``ensure_staff_groups`` puts them back the way
the migration made them, from the migration's own lists.
"""

import importlib

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType

from records.models import User
from tests.signin_fixtures import verified_client

GROUPS_MIGRATION = importlib.import_module("records.migrations.0003_staff_groups")
# Later migrations that add to the groups: what a flushed test database must get back.
LATER_GRANTS = {
    "Superviseurs": [
        "access_control.view_apitoken",  # records 0004
        *importlib.import_module("accounts.migrations.0003_supervisors_register_apps").SUPERVISORS,
    ]
}
AGENTS, SUPERVISORS = "Agents", "Superviseurs"


def ensure_staff_groups() -> None:
    for (app_label, model), permissions in GROUPS_MIGRATION.CUSTOM_PERMISSIONS.items():
        content_type = ContentType.objects.get_by_natural_key(app_label, model)
        for codename, name in permissions:
            Permission.objects.get_or_create(content_type=content_type, codename=codename, defaults={"name": name})
    for group_name, names in GROUPS_MIGRATION.GROUPS.items():
        group, _created = Group.objects.get_or_create(name=group_name)
        wanted = [
            Permission.objects.get(content_type__app_label=name.split(".")[0], codename=name.split(".")[1])
            for name in [*names, *LATER_GRANTS.get(group_name, [])]
        ]
        group.permissions.set(wanted)


def make_staff_member(username: str, group: str | None, **fields) -> User:
    ensure_staff_groups()
    defaults = {"kind": User.Kind.STAFF, "is_staff": True, "first_name": "Karim", "last_name": "Benali", **fields}
    user, _created = User.objects.get_or_create(username=username, defaults=defaults)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture(name="agent")
def fixture_agent(db) -> User:
    """Karim Benali, health-insurance agent."""
    return make_staff_member("karim.benali", AGENTS)


@pytest.fixture(name="supervisor")
def fixture_supervisor(db) -> User:
    return make_staff_member("sophie.laurent", SUPERVISORS, first_name="Sophie", last_name="Laurent")


@pytest.fixture(name="agent_client")
def fixture_agent_client(client, agent):
    return verified_client(client, agent)


@pytest.fixture(name="supervisor_client")
def fixture_supervisor_client(client, supervisor):
    return verified_client(client, supervisor)
