"""The replay's judge on its own: the packaged roles, resolved, refuse what they should and name the statement.

These need build/prod/sam.yaml (`make package STAGE=prod`) but no dev stack.
"""

from __future__ import annotations

import pytest

from tests.iam.actions import Locator, needs_for
from tests.iam.evaluate import UnsupportedCondition, Verdict, conditions_hold, decide
from tests.iam.template import Statement


@pytest.fixture(scope="module")
def api(template):
    function = template.functions["app.app"]
    return function, template.statements(function.role_id)


@pytest.fixture(scope="module")
def api_locator(template, api):
    function, _ = api
    return Locator(template, function, {"JOBS_TABLE_NAME": "dev-jobs", "S3_BUCKET_NAME": "dev-bucket"})


def _decide(statements, call, locator):
    (need,) = needs_for(call, locator)
    return need, decide(statements, need.action, need.resource, need.context)


def test_the_api_may_read_but_never_write_an_api_key_record(api, api_locator):
    _, statements = api
    key = {"pk": {"S": "APIKEY"}, "sk": {"S": "KEY#0123456789abcdef"}}

    _, read = _decide(statements, _call("dynamodb", "GetItem", TableName="dev-jobs", Key=key), api_locator)
    _, write = _decide(statements, _call("dynamodb", "UpdateItem", TableName="dev-jobs", Key=key), api_locator)
    _, job = _decide(statements, _call("dynamodb", "UpdateItem", TableName="dev-jobs", Key=_job_key()), api_locator)

    assert read.verdict is Verdict.ALLOWED
    assert write.verdict is Verdict.EXPLICIT_DENY and [s.body["Sid"] for s in write.denied_by] == ["ApiKeysReadOnly"]
    assert job.verdict is Verdict.ALLOWED


def test_the_api_may_list_sources_but_not_results_nor_the_whole_bucket(api, api_locator):
    _, statements = api

    _, sources = _decide(
        statements, _call("s3", "ListObjectsV2", Bucket="dev-bucket", Prefix="downloads/"), api_locator
    )
    _, results = _decide(statements, _call("s3", "ListObjectsV2", Bucket="dev-bucket", Prefix="results/"), api_locator)
    need, whole = _decide(statements, _call("s3", "HeadBucket", Bucket="dev-bucket"), api_locator)

    assert sources.verdict is Verdict.ALLOWED
    assert results.verdict is whole.verdict is Verdict.IMPLICIT_DENY
    assert need.action == "s3:ListBucket" and need.context == {}
    assert [s.body["Sid"] for s in whole.near] == ["MissingSourcesAndHealth"]


def test_a_resource_the_function_is_not_told_about_is_never_allowed(api, api_locator):
    _, statements = api

    need, decision = _decide(
        statements, _call("dynamodb", "GetItem", TableName="someone-elses", Key=_job_key()), api_locator
    )

    assert need.resource == "unmapped:dynamodb:someone-elses"
    assert decision.verdict is Verdict.IMPLICIT_DENY


def test_a_transaction_needs_each_items_own_action(api_locator):
    items = [
        {"Put": {"TableName": "dev-jobs", "Item": _job_key()}},
        {"ConditionCheck": {"TableName": "dev-jobs", "Key": _job_key()}},
        {"Delete": {"TableName": "dev-jobs", "Key": _job_key()}},
    ]

    needs = needs_for(_call("dynamodb", "TransactWriteItems", TransactItems=items), api_locator)

    assert [need.action for need in needs] == ["dynamodb:PutItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem"]
    assert {need.resource.rsplit(":", 1)[-1] for need in needs} == {"table/delineate-prod-JobsTable-IAMREPLAY1"}


def test_a_presigned_url_needs_get_object_on_its_key(api, api_locator):
    _, statements = api
    call = {**_call("s3", "GetObject", Bucket="dev-bucket", Key="results/job/bundle.zip"), "presign": True}

    need, decision = _decide(statements, call, api_locator)

    assert (need.action, need.note) == ("s3:GetObject", "presigned URL")
    assert need.resource.endswith(":::delineate-prod-storagebucket-iamreplay1/results/job/bundle.zip")
    assert decision.verdict is Verdict.ALLOWED


def test_a_condition_operator_the_replay_does_not_know_stops_it():
    with pytest.raises(UnsupportedCondition):
        conditions_hold({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": ["5"]})


def test_a_missing_condition_key_fails_a_plain_operator_but_not_an_if_exists_one():
    statement = Statement("Role", "p", 0, {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"})
    limited = {"StringLike": {"s3:prefix": ["downloads/*"]}}
    lenient = {"StringLikeIfExists": {"s3:prefix": ["downloads/*"]}}

    assert not conditions_hold(limited, {})
    assert conditions_hold(lenient, {})
    assert decide([statement], "S3:LISTBUCKET", "arn:aws:s3:::b", {}).verdict is Verdict.ALLOWED  # actions ignore case


def _call(service: str, operation: str, **params) -> dict:
    return {"service": service, "operation": operation, "params": params, "presign": False}


def _job_key() -> dict:
    return {"pk": {"S": "JOB#0b6f3c64-94c6-4a4e-a1f2-5d0f1b2c3d4e"}, "sk": {"S": "JOB"}}
