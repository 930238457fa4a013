"""The OpenAPI schema: checked in (no drift from the code), and exercised by schemathesis on the personas.

schemathesis generates requests from the schema served at /api/schema/ for every operation and calls the
WSGI application in process. Practitioner operations carry Dr Claire Dubois's token and patient operations
Alice's; about half of the generated profile ids, document ids and patient handles are swapped for real ones
(Alice's profile, her documents, Claire's opened handle), so that success paths are exercised too. Checks: no
5xx, and every response conforms to the schema (status code, content type, headers, body). Bounded: a few
examples per operation (``SCHEMATHESIS_EXAMPLES``), well under a minute.
"""

import os
import re
from pathlib import Path

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from records.models import Document
from tests.api_fixtures import client_for, open_handle, token_for

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_the_checked_in_schema_matches_the_code(tmp_path):
    """``make api-schema`` regenerates docs/openapi.yaml; this fails when the code moved without it."""
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    assert generated.read_text() == (ROOT / "docs" / "openapi.yaml").read_text(), "run `make api-schema`"


@pytest.fixture
def actors(personas, settings):
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]  # schemathesis's WSGI client says "localhost"
    claire = client_for(personas.claire)
    return {
        "practitioner": {"Authorization": f"Bearer {token_for(personas.claire.user)}"},
        "patient": {"Authorization": f"Bearer {token_for(personas.alice.user)}"},
        "handle": open_handle(claire, personas.alice),
        "profile_id": personas.alice.pk,
        "documents": sorted(Document.objects.filter(profile=personas.alice).values_list("pk", flat=True)),
    }


def _swap_for_real_ids(case, actors) -> None:
    parameters = case.path_parameters or {}
    if isinstance(parameters.get("handle"), str) and len(parameters["handle"]) % 2 == 0:
        parameters["handle"] = actors["handle"]
    if isinstance(parameters.get("profile_id"), int) and parameters["profile_id"] % 2 == 0:
        parameters["profile_id"] = actors["profile_id"]
    document_id = parameters.get("document_id")
    if isinstance(document_id, int) and document_id % 2 == 0:
        parameters["document_id"] = actors["documents"][document_id // 2 % len(actors["documents"])]


@pytest.fixture
def wsgi_app():
    """The WSGI application, called in the test's thread: like Django's test client, it must not close the
    test's database connection at the end of each request (``close_old_connections``)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
def test_every_operation_answers_as_documented(actors, wsgi_app):
    """Each operation of the served schema, ``EXAMPLES`` generated requests, checked against the schema.

    The operations run one after the other in this one test (one database, one set of personas): schemathesis's
    pytest plugin does not run under pytest 9 yet, so the strategies are driven by Hypothesis directly.
    """
    cache.clear()
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:
        kind = "practitioner" if operation.path.startswith("/api/v1/practitioner/") else "patient"

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case):
            cache.clear()  # the generated calls are not a flood: keep the throttles out of the way
            _swap_for_real_ids(case, actors)
            case.call_and_validate(headers=actors[check.kind], checks=CHECKS)

        check.kind = kind
        check()


def test_the_documentation_page_loads_swagger_from_our_static_files(client):
    """/api/docs/: no CDN and no inline script (the CSP allows neither)."""
    page = client.get("/api/docs/").content.decode()
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts and all("src=" in attributes for attributes in scripts)
    assert all("://" not in attributes for attributes in scripts)
    assert client.get("/api/docs/?script=").status_code == 200
    assert client.get("/api/schema/").status_code == 200


# --- Hostile parameters (issue 13 item 7): no 5xx whatever the query string, on either door ------------------

HOSTILE_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "-1",
            "0",
            "1.5",
            "99999999999999999999999999",
            "1e309",
            "NaN",
            "2024-02-30",
            "0000-00-00",
            "99999-01-01",
            "\x00",
            "a\x00b",
            "%00",
            "' OR 1=1 --",
            "[]",
            "{}",
            "../../etc/passwd",
            "ｅｃｇ",
            "\u202e",
            "x" * 5000,
        ]
    ),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40),  # lone surrogates cannot be sent
)
QUERY_EXAMPLES = int(os.environ.get("SCHEMATHESIS_QUERY_EXAMPLES", "10"))
NEGATIVE_EXAMPLES = int(os.environ.get("SCHEMATHESIS_NEGATIVE_EXAMPLES", "3"))


def _hostile_query(operation):
    """Each declared query parameter, plus the usual guesses, set to a hostile value (or left as generated)."""
    names = sorted({parameter.name for parameter in operation.query} | {"page", "page_size", "ordering", "cursor"})
    return st.dictionaries(st.sampled_from(names), HOSTILE_VALUES, max_size=len(names))


def _run(strategy, examples: int, check_case) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=strategy)
    def run(drawn):
        check_case(*drawn)

    run()


@pytest.mark.django_db
def test_hostile_parameters_never_fail_the_server_with_either_token(actors, wsgi_app):
    """Every operation, with a practitioner's and a patient's token, never answers 5xx (schemathesis).

    GET operations get hostile query strings (NUL, absurd dates and numbers, huge and odd strings, unknown
    parameters), the others a few generated requests; every operation also gets schemathesis's negative cases
    (values that break the schema: wrong types, missing fields). Each door is also called with the other door's
    token. Half the generated ids are real ones (``_swap_for_real_ids``), so that the views run past the look-up. Only ``not_a_server_error``
    is checked: a refusal may be any 4xx. Bounded by ``SCHEMATHESIS_QUERY_EXAMPLES`` and
    ``SCHEMATHESIS_NEGATIVE_EXAMPLES`` (well under a minute).
    """
    cache.clear()
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sum(operation.method.upper() == "GET" for operation in operations) >= 15
    tokens = st.sampled_from(["practitioner", "patient"])

    def call(case, token: str, query=None) -> None:
        cache.clear()  # the generated calls are not a flood: keep the throttles out of the way
        _swap_for_real_ids(case, actors)
        if query is not None:
            case.query = {**(case.query or {}), **query}
        case.call_and_validate(headers=actors[token], checks=[not_a_server_error])

    for operation in operations:
        if operation.method.upper() == "GET":
            _run(st.tuples(operation.as_strategy(), tokens, _hostile_query(operation)), QUERY_EXAMPLES, call)
        else:
            _run(st.tuples(operation.as_strategy(), tokens), NEGATIVE_EXAMPLES, call)
        negative = st.tuples(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), tokens)
        _run(negative, NEGATIVE_EXAMPLES, call)
