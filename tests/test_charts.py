"""The charts of issue 18 (item 5): the numbers each chart draws, its table equivalent and the pages' query counts.

The drawing itself is checked in Chromium by ``tests/test_browser_polish.py``.
"""

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from access_control.api import open_record
from access_control.models import AccessMode
from plumbing.charts import RED, Series, chart
from tests.portal_fixtures import _fresh_cache, signed_in, text, url  # noqa: F401

pytestmark = pytest.mark.django_db


def _chart_data(content: str, chart_id: str) -> dict:
    found = re.search(rf'<script id="{chart_id}-data" type="application/json">(.*?)</script>', content, re.S)
    assert found, chart_id
    return json.loads(found.group(1))


def test_a_chart_carries_its_table_rows():
    built = chart("c", "Titre", ["janv.", "févr."], [Series("A", [1, 2]), Series("B", [0, 3], RED)], stacked=True)
    assert built["rows"] == [("janv.", [1, 0]), ("févr.", [2, 3])]
    assert built["spec"]["datasets"][1] == {"label": "B", "data": [0, 3], "colour": RED}
    assert built["data_id"] == "c-data" and not built["empty"]
    assert chart("e", "Vide", ["x"], [Series("A", [0])])["empty"]


def test_the_patients_access_charts_count_openings_by_month_profession_and_mode__T3(
    client, personas, django_assert_num_queries
):
    alice = personas.alice
    assert open_record(personas.david, alice).allowed
    assert open_record(personas.david, alice).allowed
    assert open_record(personas.emma, alice).allowed
    assert open_record(personas.ines, alice, mode=AccessMode.CENTRE_15).allowed
    with time_machine.travel(timezone.now() - timedelta(days=400), tick=False):
        assert open_record(personas.claire, alice).allowed  # older than the twelve months shown: left out
    signed_in(client, alice)
    client.get(url("trail_charts"))
    with django_assert_num_queries(11):
        content = text(client.get(url("trail_charts")))
    per_month = _chart_data(content, "accesses-per-month")
    assert len(per_month["labels"]) == 12
    normal, emergency = per_month["datasets"]
    assert normal["data"][-1] == 3 and sum(normal["data"]) == 3
    assert emergency["data"][-1] == 1 and emergency["colour"] == RED
    per_profession = _chart_data(content, "accesses-per-profession")
    counts = dict(zip(per_profession["labels"], per_profession["datasets"][0]["data"], strict=True))
    assert counts["Médecin"] == 3 and counts["Pharmacien"] == 1
    per_mode = _chart_data(content, "accesses-per-mode")
    modes = dict(zip(per_mode["labels"], per_mode["datasets"][0]["data"], strict=True))
    assert modes == {"Normal": 3, "Bris de glace": 0, "Centre 15 (SAMU)": 1}
    assert per_mode["datasets"][0]["colour"] == ["#000091", RED, RED]
    # The table equivalent says the same, and the page names the emergency.
    assert "Voir les chiffres en tableau" in content
    assert re.search(r"<th scope=\"row\">Centre 15 \(SAMU\)</th><td>1</td>", content)
    assert "1 consultation en urgence sur cette période" in content
    assert "<script>" not in content  # data blocks only: the CSP allows no inline script


def test_a_representative_sees_the_childs_charts_not_their_own__T3_L10(client, personas):
    assert open_record(personas.david, personas.alice).allowed
    assert open_record(personas.emma, personas.fanny).allowed
    signed_in(client, personas.alice)
    client.post(url("switch_profile"), {"profile": personas.fanny.pk})
    content = text(client.get(url("trail_charts")))
    per_profession = _chart_data(content, "accesses-per-profession")
    assert per_profession["labels"] == ["Pharmacien"] and per_profession["datasets"][0]["data"] == [1]
