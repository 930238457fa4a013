"""The ``citus`` profile of docker-compose.yml: three Citus nodes, their registration, and the app on the coordinator."""

import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("citus-migrate", "citus-web", "citus-worker", "citus-beat")


def _config(*profile: str) -> dict:
    """The compose file as docker-compose resolves it (anchors merged, variables substituted)."""
    env = {**os.environ, "DJANGO_SECRET_KEY": "compose-check", "CARNET_MASTER_KEY": "compose-check"}
    result = subprocess.run(
        ["docker-compose", *profile, "config"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return yaml.safe_load(result.stdout)["services"]


def test_the_plain_stack_is_unchanged_without_the_profile():
    """``docker compose up`` starts no Citus node and keeps the app on the plain PostgreSQL service."""
    services = _config()
    for name, service in services.items():
        assert (service.get("profiles") == ["citus"]) == name.startswith("citus"), name
    assert services["web"]["environment"]["DATABASE_URL"].startswith("postgres://carnet:carnet@postgres:5432/")


def test_the_citus_profile_runs_the_app_on_the_coordinator_of_the_official_image():
    """A coordinator and two workers of citusdata/citus, registered once; web, worker and beat use the coordinator."""
    services = _config("--profile", "citus")
    nodes = ("citus-coordinator", "citus-worker-1", "citus-worker-2")
    assert all(services[node]["image"] == "citusdata/citus:13.2" for node in nodes)
    register = services["citus-register"]
    assert set(register["depends_on"]) == set(nodes)
    assert "citus_add_node" in register["command"][0]
    assert register["environment"]["WORKERS"].split() == ["citus-worker-1", "citus-worker-2"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["environment"]["DATABASE_URL"].endswith("@citus-coordinator:5432/carnet"), name
        assert "postgres" not in service["depends_on"], name
    # The layout follows the migrations, after the workers are known; the app waits for both.
    assert services["citus-migrate"]["command"][-1].endswith("manage.py citus_distribute")
    assert "citus-register" in services["citus-migrate"]["depends_on"]
    for name in ("citus-web", "citus-worker", "citus-beat"):
        assert services[name]["depends_on"]["citus-migrate"]["condition"] == "service_completed_successfully"
