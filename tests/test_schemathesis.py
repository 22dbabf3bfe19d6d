"""A bounded schemathesis run against the API's own OpenAPI document, in process (Django's WSGI
app: loopback only, nothing leaves the machine).

Every generated request, valid and invalid, for every operation, must get a response the document
describes: a documented status, a body of the documented shape (errors always `{"detail",
"code"}`), never a server error, and a schema-valid request is never refused for its shape. The
run ends with more searches than the default rate limit allows, so its 429s are checked too.
Searches by text run on the small local test model.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.fixtures.corpus import Corpus

pytestmark = pytest.mark.django_db

# A request the document calls valid may still be refused for what it means (no input to
# search, an image that is not one, an unknown artwork), which no schema can say; schemathesis's
# positive_data_acceptance check would count those. What must never happen is a refusal of its
# shape: these codes, on a schema-valid request, would mean the document and the server disagree.
SHAPE_CODES = {"bad_request", "bad_request_body"}
# Per operation: valid requests, then invalid ones (four operations: 320 requests); then valid
# searches from one client in one window, past the default budget.
EXAMPLES = {GenerationMode.POSITIVE: 50, GenerationMode.NEGATIVE: 30}
LIMITED_EXAMPLES = 150


@pytest.fixture
def connection_kept_between_requests() -> Iterator[None]:
    """As Django's test client does: a request's start and end must not close the test's
    connection (its transaction holds the test data)."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def frozen_limiter_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rate limiter's clock held mid-window, so the budget cannot renew during the run."""
    now = 60.0 * int(time.time() // 60) + 1
    monkeypatch.setattr("gallery.middleware.time.time", lambda: now)


def test_api_matches_its_openapi_document(
    corpus: Corpus,
    test_encoder_settings: Any,
    connection_kept_between_requests: None,
    frozen_limiter_clock: None,
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # every operation of the document loads
        operations.append(result.ok())
    assert len(operations) == 4
    execute = next(op for op in operations if op.method.upper() == "POST")
    runs = [(op, mode, count, True) for op in operations for mode, count in EXAMPLES.items()]
    runs.append((execute, GenerationMode.POSITIVE, LIMITED_EXAMPLES, False))
    totals: Counter[str] = Counter()
    failures: list[str] = []
    cache.clear()
    for operation, mode, count, fresh_budget in runs:
        _run(operation, mode, count, fresh_budget=fresh_budget, totals=totals, failures=failures)
    print(f"\nschemathesis: {sum(totals.values())} requests; {dict(sorted(totals.items()))}")
    assert not failures, "\n\n".join(failures[:10])
    budget, _ = django_settings.GALLERY_RATE_LIMITS["search"]
    assert totals["positive 429"] >= LIMITED_EXAMPLES - budget


def _run(
    operation: Any,
    mode: GenerationMode,
    count: int,
    *,
    fresh_budget: bool,
    totals: Counter[str],
    failures: list[str],
) -> None:
    """`count` generated requests to `operation`; each failure is noted in `failures`."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=count,
        deadline=None,
        derandomize=True,  # the same examples every run: a failure is reproducible
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        if fresh_budget:
            cache.clear()
        try:
            response = case.call()
            totals[f"{mode.value} {response.status_code}"] += 1
            case.validate_response(response, excluded_checks=[positive_data_acceptance])
            assert response.status_code < 500, response.text
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"detail", "code"}, body
                assert isinstance(body["detail"], str) and body["detail"], body
                assert isinstance(body["code"], str) and body["code"], body
                if mode is GenerationMode.POSITIVE:
                    assert body["code"] not in SHAPE_CODES, body
        except (Exception, BaseExceptionGroup) as exc:  # collected, to report them all
            failures.append(f"{operation.label} {mode.value}: {exc}\n{case.as_curl_command()}")

    check()
