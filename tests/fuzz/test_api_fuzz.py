"""Property-based: whatever a client sends, the API answers without a 5xx and as documented."""

from __future__ import annotations

import schemathesis
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, PositiveDataAcceptanceConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from chalicelib.api.openapi import DOCUMENT_PATH
from tests.fuzz.conftest import MIN_REQUESTS

# Loaded at import, not through schemathesis.pytest.from_fixture: that path reads
# a pytest-internal attribute pytest 9 no longer has. The base URL (a free port
# chosen when the stack starts) is given per call instead.
schema = schemathesis.openapi.from_path(str(DOCUMENT_PATH))
schema.config.update(request_timeout=15)
schema.config.generation.update(modes=["positive", "negative"], max_examples=200)
# A well-formed initiate may still be 422: the fuzzer reuses an Idempotency-Key
# with another body, which the contract answers with 422 by design.
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=[*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "422"]
)


# API Gateway REST routes only these; `chalice local` (http.server) answers any
# other method, e.g. TRACE, with its own 501 HTML page before the app sees it.
GATEWAY_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _integral_float(value) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_integral_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_integral_float(item) for item in value)
    return False


def _outside_the_contract(case) -> bool:
    """Requests the document cannot describe, so they say nothing about conformance.

    - Methods API Gateway REST never routes (TRACE, CONNECT): `chalice local`
      (http.server) answers them with its own 501 page before the app runs.
    - Ids written as integral floats (`70000.0`) in a "valid" body: JSON Schema
      counts them as integers, the parser deliberately refuses them (400; see
      tests/unit/api/test_validation.py). The negative mode still sends them.
    """
    if case.method.upper() not in GATEWAY_METHODS:
        return True
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    return positive and _integral_float(case.body)


def unprovable_checks(case) -> list:
    """Schema-valid values the service refuses by design, so their acceptance proves nothing:
    - a `callbackUrl`: any URI fits the schema, but a host that does not resolve, or resolves to
      a private or metadata address, is a 400 (no request forgery: chalicelib/webhooks/urls.py);
    - a listing `cursor`: opaque, and only one the listing handed out is accepted."""
    body = case.body if isinstance(case.body, dict) else {}
    if isinstance(body.get("callbackUrl"), str) or "cursor" in (case.query or {}):
        return [positive_data_acceptance]
    return []


@schema.parametrize()
def test_every_response_conforms_to_the_openapi_document(case, fuzz_stack, tally, http_session):
    if _outside_the_contract(case):
        return
    response = case.call(base_url=fuzz_stack.base_url, session=http_session)
    tally.record(case.operation.label, response.status_code, case.method.upper())
    try:
        case.validate_response(response, excluded_checks=unprovable_checks(case))
    except (Exception, BaseExceptionGroup) as failure:  # FailureGroup is a BaseExceptionGroup
        # Kept for build/fuzz-results.json, then re-raised for pytest.
        tally.failures.append(
            {
                "operation": case.operation.label,
                "status": response.status_code,
                "curl": case.as_curl_command(),
                "failure": str(failure)[:2000],
            }
        )
        raise


def test_the_fuzzer_sent_enough_requests(tally):
    assert tally.total >= MIN_REQUESTS, tally.as_dict()["byOperation"]
    assert tally.server_errors == 0
