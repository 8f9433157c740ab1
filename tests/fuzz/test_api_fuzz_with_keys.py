"""The fuzz tier again with AUTH_MODE=api-key (the cloud stage's mode): every request carries a
key made by the admin command, so the generated inputs reach the routes behind the key check.

Fewer examples per operation than the keyless run (tests/fuzz/test_api_fuzz.py), whose
generated inputs these mostly repeat: what differs is the path through the middleware.
"""

from __future__ import annotations

import re

import pytest
import schemathesis

from chalicelib.api.openapi import DOCUMENT_PATH
from tests.e2e.test_admin_keys import admin
from tests.fuzz.conftest import FUZZ_STACK
from tests.fuzz.test_api_fuzz import _outside_the_contract, unprovable_checks
from tests.fuzz.test_api_fuzz import schema as keyless_schema
from tests.support.devstack import start_dev_stack

schema = schemathesis.openapi.from_path(str(DOCUMENT_PATH))
schema.config.update(request_timeout=15)
schema.config.generation.update(modes=["positive", "negative"], max_examples=30)
schema.config.checks.positive_data_acceptance = keyless_schema.config.checks.positive_data_acceptance


@pytest.fixture(scope="module")
def keyed_stack(tmp_path_factory):
    stack = start_dev_stack(tmp_path_factory.mktemp("fuzzkeys"), **FUZZ_STACK, AUTH_MODE="api-key")
    created = admin(stack, "create", "--name", "fuzz")
    assert created.returncode == 0, created.stderr
    yield stack, re.search(r"DELINEATE_API_KEY=(dlk_\S+)", created.stdout).group(1)
    stack.stop()


@schema.parametrize()
def test_every_keyed_response_conforms_to_the_openapi_document(case, keyed_stack, tally, http_session):
    if _outside_the_contract(case):
        return
    stack, key = keyed_stack
    response = case.call(base_url=stack.base_url, session=http_session, headers={"Authorization": f"Bearer {key}"})
    tally.record(f"{case.operation.label} [api-key]", response.status_code, case.method.upper())
    try:
        case.validate_response(response, excluded_checks=unprovable_checks(case))
    except (Exception, BaseExceptionGroup) as failure:
        tally.failures.append(
            {
                "operation": f"{case.operation.label} [api-key]",
                "status": response.status_code,
                "curl": case.as_curl_command(),
                "failure": str(failure)[:2000],
            }
        )
        raise
