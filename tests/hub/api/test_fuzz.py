"""Fuzzing the API from its OpenAPI schema: no 5xx, errors in the error shape, as documented.

Schemathesis generates requests, valid and invalid, for every operation the schema describes;
they go to the hub's WSGI application in-process, inside the test's database transaction. Callers
take turns: anonymous, a contributor with a token, staff with a token (writes mostly with a token,
since without one they all stop at 401). Three cases in five that name a release or a reference
set are pointed at real ones (a published, a rejected and an in-review release), so that the
checks behind the lookups (Range, review, evaluation requests, grids) are reached too. 1,000
cases, derandomized: the same cases on every run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client as HttpClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from medigan_catalog.errors import ErrorCode
from tests import factories

# Schemathesis fuzzing takes most of a minute: `make test` runs it, the fast lane does not.
pytestmark = [pytest.mark.django_db, pytest.mark.integration]

FUZZ_CASES = 1000
# A wall-clock bound well above the usual run (about a minute on two cores): a run that needs
# more has found something slow, which is a finding too.
FUZZ_BUDGET_SECONDS = 300
_ERROR_CODES = {code.value for code in ErrorCode}
# No 5xx; and the schema tells the truth: every status, media type and body an answer has is the
# one the schema documents for that operation (error bodies included).
_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Releases the fuzzer aims at, in turn: (namespace, name, version, artifact filename or None).
# The published one comes up twice as often: every caller sees it, so more checks lie behind it.
_PUBLISHED = ("alice", "noise-16", "1.0.0", "noise-16-1.0.0.zip")
_TARGETS = [
    _PUBLISHED,
    ("alice", "noise-16", "0.9.0", None),
    _PUBLISHED,
    ("alice", "noise-16", "1.1.0-rc.1", None),
]
_REFERENCE = "noise"
_WRITE_CALLERS = ["contributor", "staff", "anonymous", "staff"]


@pytest.fixture
def world() -> dict[str, dict[str, str]]:
    """A hub with a published, a rejected and an in-review release, and one caller of each kind."""
    alice = factories.user("alice")
    factories.release_row(submitter=alice, version="1.0.0", package=b"0123456789" * 100)
    factories.release_row(submitter=alice, version="0.9.0", state="rejected")
    factories.release_row(submitter=alice, version="1.1.0-rc.1", state="in_review")
    factories.reference_set_row(_REFERENCE)
    contributor = factories.token(factories.user("bob"))
    staff = factories.token(factories.user("sam", staff=True))
    return {
        "anonymous": {},
        "contributor": {"Authorization": f"Token {contributor}"},
        "staff": {"Authorization": f"Token {staff}"},
    }


@contextmanager
def _connection_kept() -> Iterator[None]:
    # Django closes the database connection around each request it serves, which would end the
    # test's transaction (on PostgreSQL; SQLite keeps an in-memory database open). The test client
    # switches that off for its own requests only, and switches it on again after each, so this
    # must wrap the WSGI calls themselves, after any test client request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _error_shape_problem(response: Any) -> str | None:
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} with a body that is not JSON: {response.content[:200]!r}"
    if not isinstance(body, dict) or set(body) != {"code", "message", "detail"}:
        return f"{response.status_code} with a body not in the error shape: {body!r:.300}"
    if body["code"] not in _ERROR_CODES or not isinstance(body["message"], str):
        return f"{response.status_code} with an unknown code or a bad message: {body!r:.300}"
    return None


def _aim_at_real_records(case: Any, target: tuple[str, str, str, str | None]) -> None:
    """Point the case's ids at records that exist; the rest of the case stays as generated."""
    namespace, name, version, filename = target
    parameters = case.path_parameters or {}
    if "namespace" in parameters:
        parameters.update(namespace=namespace, name=name)
    if "version" in parameters:
        parameters["version"] = version
    if "filename" in parameters and filename is not None:
        parameters["filename"] = filename
    if "reference" in parameters:
        parameters["reference"] = _REFERENCE
    if isinstance(case.body, dict) and "reference" in case.body:
        case.body["reference"] = _REFERENCE


def test_fuzzed_requests_never_get_a_server_error_and_errors_have_the_error_shape(
    world: dict[str, dict[str, str]],
) -> None:
    document = HttpClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = schemathesis.openapi.from_dict(document.json())
    schema.app = WSGIHandler()
    cases = st.one_of(
        schema.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        schema.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )
    callers = ["anonymous", "contributor", "staff"]
    sent: list[str] = []
    started = time.monotonic()

    @settings(
        max_examples=FUZZ_CASES,
        derandomize=True,
        database=None,
        deadline=None,
        # Shrinking could run for long on a failure; the failing case is reported as it is.
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: Any) -> None:
        elapsed = time.monotonic() - started
        assert elapsed < FUZZ_BUDGET_SECONDS, f"the fuzz run passed {FUZZ_BUDGET_SECONDS} s"
        # Callers and targets take turns rather than being drawn (Hypothesis would favour the
        # first of each): three cases in five are aimed at real records, and the callers' cycle
        # (3, or 4 for writes, which without a token all stop at 401) is prime to that cycle of 5,
        # so every caller meets every target.
        index = len(sent)
        turns = callers if case.method == "GET" else _WRITE_CALLERS
        caller = turns[index % len(turns)]
        if index % 5 < 3:
            _aim_at_real_records(case, _TARGETS[index // 5 % len(_TARGETS)])
        # The WSGI transport leaves a gzip body encoded, and its client asks for gzip; the
        # catalogue's gzip answer is tested in tests/hub/test_snapshot.py.
        response = case.call(headers={**world[caller], "Accept-Encoding": "identity"})
        sent.append(f"{case.method} {case.operation.path}")
        case.validate_response(response, checks=_CHECKS)
        problem = _error_shape_problem(response)
        assert problem is None, f"{case.as_curl_command(headers=world[caller])}\n{problem}"

    with _connection_kept():
        run()

    assert len(sent) == FUZZ_CASES
    # Every operation of the schema was reached, not only the easy ones.
    operations = {
        f"{method.upper()} {path}"
        for path, methods in document.json()["paths"].items()
        for method in methods
    }
    assert operations <= set(sent)
