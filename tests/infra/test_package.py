"""The cloud deployment, read from what `make package` builds (build/<stage>/sam.yaml).

scripts/package.py runs once for this module (chalice package with the merge
template of infra/); every test reads the same packaged template. No AWS
account is involved: `chalice package` needs only a region.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chalicelib.config import Settings
from chalicelib.jobs.owners import OWNER_INDEX, OWNER_INDEX_ATTRIBUTES
from chalicelib.webhooks.events import RetrySchedule

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_SCRIPT = ROOT / "scripts" / "package.py"
STAGE = "prod"
FUNCTIONS = ("APIHandler", "ProcessWork", "SweepStalledJobs")
STACK_RESOURCE_ENV = {
    "JOBS_TABLE_NAME": {"Ref": "JobsTable"},
    "WORK_QUEUE_URL": {"Ref": "WorkQueue"},
    "DEAD_LETTER_QUEUE_URL": {"Ref": "DeadLetterQueue"},
    "S3_BUCKET_NAME": {"Ref": "StorageBucket"},
}
# What each function's code calls (chalicelib/), and nothing more.
EXPECTED_ACTIONS = {
    "APIHandler": {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",  # the listed jobs' items (jobs/owners.py)
        "dynamodb:DescribeTable",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "s3:ListBucket",
        "s3:GetObject",
    },
    "ProcessWork": {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "sqs:ChangeMessageVisibility",
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "secretsmanager:GetSecretValue",
    },
    "SweepStalledJobs": {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
    },
}


def _load_packaging():
    spec = importlib.util.spec_from_file_location("delineate_package_script", PACKAGE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


packaging = _load_packaging()


# -- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("package") / STAGE
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    result = subprocess.run(
        [sys.executable, str(PACKAGE_SCRIPT), "--stage", STAGE, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"package.py failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.fixture(scope="module")
def template(build_dir) -> dict:
    return packaging.load_cfn_yaml(build_dir / "sam.yaml")


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template["Resources"]


@pytest.fixture(scope="module")
def chalice_config() -> dict:
    return json.loads((ROOT / ".chalice" / "config.json").read_text())


# -- helpers --------------------------------------------------------------------


def references(value) -> set[str]:
    """Logical ids (and parameters) a value refers to through Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {
                    name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text) if not name.startswith("AWS::")
                }
                if isinstance(inner, list):
                    found |= references(inner[1])
            else:
                found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return found


def function_props(resources, name) -> dict:
    return resources[name]["Properties"]


def env_of(resources, name) -> dict:
    return function_props(resources, name)["Environment"]["Variables"]


def role_of(resources, function) -> dict:
    role = function_props(resources, function)["Role"]
    return resources[role["Fn::GetAtt"][0]]


def statements_of(role: dict) -> list[dict]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def all_policy_statements(resources) -> list[tuple[str, dict]]:
    found = []
    for name, body in resources.items():
        props = body.get("Properties", {})
        if body["Type"] == "AWS::IAM::Role":
            found += [(name, statement) for statement in statements_of(body)]
        elif body["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found += [(name, statement) for statement in props["PolicyDocument"]["Statement"]]
    return found


# -- the build ------------------------------------------------------------------


def test_package_writes_template_and_code_bundle(build_dir):
    with zipfile.ZipFile(build_dir / "deployment.zip") as bundle:
        names = set(bundle.namelist())

    assert {"app.py", "chalicelib/config.py", "aws_xray_sdk/__init__.py"} <= names
    assert not any(name.startswith(("tests/", "infra/", "scripts/")) for name in names)


def test_template_has_the_three_functions_and_the_data_plane(resources):
    types = {name: body["Type"] for name, body in resources.items()}

    for function in FUNCTIONS:
        assert types[function] == "AWS::Serverless::Function"
    assert types["JobsTable"] == "AWS::DynamoDB::Table"
    assert types["WorkQueue"] == types["DeadLetterQueue"] == "AWS::SQS::Queue"
    assert types["StorageBucket"] == "AWS::S3::Bucket"
    assert types["RestAPI"] == "AWS::Serverless::Api"


def test_overrides_cannot_redefine_a_data_plane_resource():
    template = {"Resources": {"JobsTable": {"Type": "AWS::DynamoDB::Table"}}}
    overrides = {"Resources": {"JobsTable": {"Type": "AWS::DynamoDB::Table", "Properties": {}}}}

    with pytest.raises(packaging.PackagingError, match="redefines data-plane resources"):
        packaging.build_merge_template(template, overrides)


def test_an_override_merged_into_a_chalice_intrinsic_is_reported():
    merged = {"Resources": {"F": {"Properties": {"Queue": {"Fn::Sub": "arn", "Fn::GetAtt": ["Q", "Arn"]}}}}}

    assert packaging._mixed_intrinsics(merged["Resources"], "/Resources") == [
        "/Resources/F/Properties/Queue: ['Fn::GetAtt', 'Fn::Sub']"
    ]


# -- the worker and its queue ---------------------------------------------------


def test_worker_reports_partial_batch_failures(resources):
    event = function_props(resources, "ProcessWork")["Events"]["ProcessWorkSqsEventSource"]

    assert event["Type"] == "SQS"
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_worker_event_source_is_this_stacks_work_queue(resources):
    queue = function_props(resources, "ProcessWork")["Events"]["ProcessWorkSqsEventSource"]["Properties"]["Queue"]

    assert references(queue) == {"WorkQueue"}
    assert queue == {"Fn::Sub": "${WorkQueue.Arn}"}


def test_worker_takes_one_file_message_per_invocation(resources):
    props = function_props(resources, "ProcessWork")
    event = props["Events"]["ProcessWorkSqsEventSource"]["Properties"]
    slowest_file_s = int(env_of(resources, "ProcessWork")["DOWNLOAD_DELAY_MAX_MS"]) / 1000

    assert event["BatchSize"] == 1
    assert event["BatchSize"] * slowest_file_s < props["Timeout"]


def test_worker_concurrency_is_bounded_and_known_to_the_functions(template, resources):
    event = function_props(resources, "ProcessWork")["Events"]["ProcessWorkSqsEventSource"]["Properties"]
    parameter = template["Parameters"]["WorkerMaximumConcurrency"]

    assert event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "WorkerMaximumConcurrency"}
    assert 2 <= parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"] <= 1000
    for function in FUNCTIONS:
        assert env_of(resources, function)["WORKER_CONCURRENCY"] == {"Ref": "WorkerMaximumConcurrency"}


def test_work_queue_visibility_timeout_is_at_least_six_worker_timeouts(template, resources):
    timeout = function_props(resources, "ProcessWork")["Timeout"]
    parameter = template["Parameters"]["VisibilityTimeoutSeconds"]

    assert timeout == 300
    assert resources["WorkQueue"]["Properties"]["VisibilityTimeout"] == {"Ref": "VisibilityTimeoutSeconds"}
    assert parameter["Default"] >= 6 * timeout
    assert parameter["MinValue"] >= 6 * timeout


def test_failing_messages_move_to_the_dead_letter_queue_after_max_receives(template, resources, chalice_config):
    redrive = resources["WorkQueue"]["Properties"]["RedrivePolicy"]

    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    for function in FUNCTIONS:
        assert env_of(resources, function)["MAX_RECEIVE_COUNT"] == {"Ref": "MaxReceiveCount"}
    localstack_env = chalice_config["stages"]["localstack"]["environment_variables"]
    assert int(localstack_env["MAX_RECEIVE_COUNT"]) == template["Parameters"]["MaxReceiveCount"]["Default"]


def test_dead_letter_queue_keeps_messages_longer_than_the_work_queue(resources):
    dlq = resources["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]
    work = resources["WorkQueue"]["Properties"]["MessageRetentionPeriod"]

    assert dlq > work


# -- data plane -----------------------------------------------------------------


def test_jobs_table_expires_items_bills_on_demand_and_can_be_restored(resources):
    table = resources["JobsTable"]["Properties"]

    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_owner_index_projects_only_what_its_query_reads_and_no_per_file_attribute(resources):
    indexes = {index["IndexName"]: index for index in resources["JobsTable"]["Properties"]["GlobalSecondaryIndexes"]}
    projection = indexes[OWNER_INDEX]["Projection"]

    assert projection["ProjectionType"] == "INCLUDE"
    assert sorted(projection["NonKeyAttributes"]) == sorted(OWNER_INDEX_ATTRIBUTES)
    assert {"updatedAt", "completedFiles", "availableFiles"}.isdisjoint(projection["NonKeyAttributes"])


def test_bucket_is_private_encrypted_and_expires_results(resources):
    bucket = resources["StorageBucket"]["Properties"]
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}

    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert rules["expire-result-bundles"]["Prefix"] == "results/"
    assert rules["expire-result-bundles"]["Status"] == "Enabled"
    assert rules["abort-stale-multipart-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1


def test_pages_may_read_zips_by_get_only_from_origins_the_stack_is_given(template, resources):
    """/app verifies a zip by fetching its presigned URL: a cross-origin GET the bucket must allow."""
    (rule,) = resources["StorageBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    parameter = template["Parameters"]["DownloadPageOrigins"]

    assert sorted(rule["AllowedMethods"]) == ["GET", "HEAD"]
    assert rule["AllowedOrigins"] == {"Ref": "DownloadPageOrigins"}
    assert "AllowedHeaders" not in rule and "ExposedHeaders" not in rule  # a simple GET needs neither
    assert parameter["Type"] == "CommaDelimitedList" and parameter["Default"] == "*"


# -- functions ------------------------------------------------------------------


def test_functions_read_resource_names_from_the_stack(resources, chalice_config):
    for function in FUNCTIONS:
        env = env_of(resources, function)
        for name, reference in STACK_RESOURCE_ENV.items():
            assert env[name] == reference, f"{function}.{name}"
    for stage, settings in chalice_config["stages"].items():
        hard_coded = set(settings.get("environment_variables", {})) & set(STACK_RESOURCE_ENV)
        assert not hard_coded, f"stage {stage} hard-codes {hard_coded}"


def test_functions_are_traced_and_so_is_the_api_stage(resources):
    for function in FUNCTIONS:
        assert function_props(resources, function)["Tracing"] == "Active"
    assert resources["RestAPI"]["Properties"]["TracingEnabled"] is True


def test_function_timeouts_fit_the_work_they_do(resources):
    api = function_props(resources, "APIHandler")
    worker = function_props(resources, "ProcessWork")
    sweeper = function_props(resources, "SweepStalledJobs")
    env = env_of(resources, "APIHandler")

    # API Gateway REST cuts an integration at 29 s; running longer is wasted.
    assert api["Timeout"] <= 29
    assert int(env["START_WAIT_MS"]) / 1000 < api["Timeout"]
    assert int(env["REQUEST_TIMEOUT_MS"]) / 1000 < api["Timeout"]
    # A file message waits up to DOWNLOAD_DELAY_MAX_MS, then heads one object.
    assert int(env["DOWNLOAD_DELAY_MAX_MS"]) / 1000 < worker["Timeout"] <= 900
    # A job or bundle lease must outlive the invocation that holds it.
    assert int(env["STALLED_JOB_SECONDS"]) > worker["Timeout"]
    assert int(env["BUNDLE_LEASE_SECONDS"]) > worker["Timeout"]
    assert sweeper["Timeout"] <= 300  # shorter than its 5-minute schedule


def test_each_function_logs_to_its_own_group_with_bounded_retention(resources):
    for function in FUNCTIONS:
        name = function_props(resources, function)["FunctionName"]["Fn::Sub"]
        groups = [
            body["Properties"]
            for body in resources.values()
            if body["Type"] == "AWS::Logs::LogGroup"
            and body["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{name}"}
        ]
        assert len(groups) == 1, function
        assert 1 <= groups[0]["RetentionInDays"] <= 400


# -- IAM ------------------------------------------------------------------------


def test_each_function_has_its_own_role(resources):
    roles = [function_props(resources, function)["Role"] for function in FUNCTIONS]

    assert all(set(role) == {"Fn::GetAtt"} for role in roles)
    assert len({role["Fn::GetAtt"][0] for role in roles}) == len(FUNCTIONS)
    for function in FUNCTIONS:
        role = role_of(resources, function)
        assert role["Type"] == "AWS::IAM::Role"
        assert "ManagedPolicyArns" not in role["Properties"]  # managed policies use Resource "*"
        assert "Policies" not in function_props(resources, function)


def test_roles_trust_only_lambda(resources):
    for function in FUNCTIONS:
        trust = role_of(resources, function)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]


def test_no_iam_statement_grants_a_wildcard_action(resources):
    statements = all_policy_statements(resources)

    assert statements
    for owner, statement in statements:
        assert "NotAction" not in statement, owner
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{owner}: {action}"


def test_only_xray_statements_use_a_wildcard_resource(resources):
    for owner, statement in all_policy_statements(resources):
        assert "NotResource" not in statement, owner
        if "*" in as_list(statement["Resource"]):
            assert statement["Resource"] == "*"
            assert all(action.startswith("xray:") for action in as_list(statement["Action"])), owner
        else:
            for resource in as_list(statement["Resource"]):
                assert "*" not in json.dumps(resource).replace("/*", ""), f"{owner}: {resource}"


def test_every_statement_but_xray_names_this_stacks_resources(resources):
    for function in FUNCTIONS:
        own_log_group = {"ApiHandlerLogGroup", "ProcessWorkLogGroup", "SweepStalledJobsLogGroup"}
        for statement in statements_of(role_of(resources, function)):
            if statement["Resource"] == "*":
                continue
            targets = references(statement["Resource"])
            assert targets, f"{function}: {statement}"
            allowed = {"JobsTable", "WorkQueue", "StorageBucket", "CallbackSigningSecret"} | own_log_group
            if function == "ProcessWork":
                allowed.add("DeadLetterQueue")  # processing.Worker dead-letters misaddressed messages
            assert targets <= allowed, statement


def test_functions_may_do_exactly_what_their_code_does(resources):
    for function, expected in EXPECTED_ACTIONS.items():
        granted = {
            action
            for statement in statements_of(role_of(resources, function))
            if statement["Effect"] == "Allow"
            for action in as_list(statement["Action"])
        }
        assert granted == expected, function


def test_only_the_worker_sends_to_the_dead_letter_queue_and_only_sends(resources):
    for function in FUNCTIONS:
        actions = {
            action
            for statement in statements_of(role_of(resources, function))
            if {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]} in as_list(statement["Resource"])
            for action in as_list(statement["Action"])
        }
        assert actions == ({"sqs:SendMessage"} if function == "ProcessWork" else set()), function


def test_writes_to_the_bucket_are_confined_to_result_bundles(resources):
    writes = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    for function in FUNCTIONS:
        for statement in statements_of(role_of(resources, function)):
            if writes & set(as_list(statement["Action"])):
                assert as_list(statement["Resource"]) == [{"Fn::Sub": "${StorageBucket.Arn}/results/*"}]


def test_only_the_sweeper_queries_the_active_jobs_index(resources):
    index = {"Fn::Sub": "${JobsTable.Arn}/index/active-jobs"}
    for function in FUNCTIONS:
        uses_index = any(
            index in as_list(statement["Resource"]) for statement in statements_of(role_of(resources, function))
        )
        assert uses_index == (function == "SweepStalledJobs"), function


def test_only_the_api_queries_the_owner_jobs_index(resources):
    index = {"Fn::Sub": "${JobsTable.Arn}/index/owner-jobs"}
    for function in FUNCTIONS:
        grants = [
            statement
            for statement in statements_of(role_of(resources, function))
            if index in as_list(statement["Resource"])
        ]
        expected = [{"Effect": "Allow", "Action": "dynamodb:Query"}] if function == "APIHandler" else []
        assert [{key: grant[key] for key in ("Effect", "Action")} for grant in grants] == expected, function


def test_the_api_may_read_api_key_items_but_never_write_them(resources):
    statements = statements_of(role_of(resources, "APIHandler"))
    table_writes = {
        action
        for statement in statements
        if statement["Effect"] == "Allow" and {"Fn::GetAtt": ["JobsTable", "Arn"]} in as_list(statement["Resource"])
        for action in as_list(statement["Action"])
        if action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
    }
    denials = [statement for statement in statements if statement["Effect"] == "Deny"]

    assert len(denials) == 1
    assert set(as_list(denials[0]["Action"])) == table_writes
    assert denials[0]["Condition"] == {"ForAnyValue:StringEquals": {"dynamodb:LeadingKeys": ["APIKEY"]}}


def test_the_cloud_stage_requires_api_keys(resources, chalice_config):
    assert chalice_config["stages"][STAGE]["environment_variables"]["AUTH_MODE"] == "api-key"
    assert env_of(resources, "APIHandler")["AUTH_MODE"] == "api-key"


def test_each_function_writes_logs_only_to_its_own_log_group(resources):
    groups = {
        "APIHandler": "ApiHandlerLogGroup",
        "ProcessWork": "ProcessWorkLogGroup",
        "SweepStalledJobs": "SweepStalledJobsLogGroup",
    }
    for function, group in groups.items():
        log_statements = [
            statement
            for statement in statements_of(role_of(resources, function))
            if any(action.startswith("logs:") for action in as_list(statement["Action"]))
        ]
        assert [statement["Resource"] for statement in log_statements] == [{"Fn::GetAtt": [group, "Arn"]}]


# -- API Gateway ----------------------------------------------------------------


def _render(template_text: str) -> dict:
    for variable, value in (("$context.error.messageString", '"gateway message"'), ("$context.requestId", "req-1")):
        template_text = template_text.replace(variable, value)
    return json.loads(template_text)


def test_unknown_paths_answer_404_in_the_error_shape(resources):
    response = resources["RestAPI"]["Properties"]["GatewayResponses"]["MISSING_AUTHENTICATION_TOKEN"]

    assert str(response["StatusCode"]) == "404"
    assert _render(response["ResponseTemplates"]["application/json"]) == {
        "error": "Not Found",
        "message": "no route matches this path",
        "requestId": "req-1",
    }


def test_gateway_made_errors_carry_our_shape_and_headers(resources):
    responses = resources["RestAPI"]["Properties"]["GatewayResponses"]

    assert {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for kind, response in responses.items():
        body = _render(response["ResponseTemplates"]["application/json"])
        assert set(body) == {"error", "message", "requestId"}, kind
        headers = response["ResponseParameters"]["Headers"]
        # Always the gateway's own id (the body's requestId): a mapping cannot
        # check a client's X-Request-ID the way the app does before echoing it.
        assert headers["X-Request-ID"] == "context.requestId", kind
        assert headers["Access-Control-Allow-Origin"] == "'*'"
        assert headers["X-Content-Type-Options"] == "'nosniff'"
        assert {"X-Frame-Options", "Strict-Transport-Security", "Referrer-Policy", "X-Request-ID"} <= set(headers)


def test_a_gateway_throttle_tells_the_client_when_to_retry(resources):
    throttled = resources["RestAPI"]["Properties"]["GatewayResponses"]["THROTTLED"]
    other = resources["RestAPI"]["Properties"]["GatewayResponses"]["DEFAULT_4XX"]

    assert str(throttled["StatusCode"]) == "429"
    assert throttled["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"
    assert "Retry-After" not in other["ResponseParameters"]["Headers"]


def test_api_stage_is_throttled_and_start_more_tightly(template, resources):
    settings = {item["ResourcePath"]: item for item in resources["RestAPI"]["Properties"]["MethodSettings"]}
    stage, start = settings["/*"], settings["/~1v1~1download~1start"]

    assert stage["HttpMethod"] == "*" and start["HttpMethod"] == "POST"
    assert stage["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert stage["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    defaults = {name: body.get("Default") for name, body in template["Parameters"].items()}
    assert defaults[start["ThrottlingRateLimit"]["Ref"]] < defaults["ApiThrottlingRateLimit"]
    assert defaults[start["ThrottlingBurstLimit"]["Ref"]] < defaults["ApiThrottlingBurstLimit"]


def test_start_at_its_throttled_rate_leaves_room_in_the_api_reservation(template, resources):
    start_wait_s = int(env_of(resources, "APIHandler")["START_WAIT_MS"]) / 1000
    parameters = template["Parameters"]

    held = parameters["StartThrottlingRateLimit"]["Default"] * start_wait_s  # Little's law
    assert held <= parameters["ApiReservedConcurrency"]["Default"] / 2


def test_api_access_logs_go_to_a_log_group_with_bounded_retention(resources):
    setting = resources["RestAPI"]["Properties"]["AccessLogSetting"]
    group = resources[setting["DestinationArn"]["Fn::GetAtt"][0]]
    fields = json.loads(setting["Format"])

    assert group["Type"] == "AWS::Logs::LogGroup"
    assert 1 <= group["Properties"]["RetentionInDays"] <= 400
    assert fields["requestId"] == "$context.requestId"
    assert {"sourceIp", "status", "path", "method"} <= set(fields)
    # A stage with access logging is refused until the account has a logging role.
    assert resources["RestAPI"]["DependsOn"] == "ApiGatewayAccount"
    account = resources["ApiGatewayAccount"]
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayLoggingRole", "Arn"]}
    assert account["DeletionPolicy"] == resources["ApiGatewayLoggingRole"]["DeletionPolicy"] == "Retain"


# -- concurrency ----------------------------------------------------------------


def test_each_function_reserves_concurrency_and_the_worker_its_mapping_maximum(template, resources):
    reserved = {function: function_props(resources, function)["ReservedConcurrentExecutions"] for function in FUNCTIONS}
    event = function_props(resources, "ProcessWork")["Events"]["ProcessWorkSqsEventSource"]["Properties"]

    assert (
        reserved["ProcessWork"] == event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "WorkerMaximumConcurrency"}
    )
    assert reserved["APIHandler"] == {"Ref": "ApiReservedConcurrency"}
    assert reserved["SweepStalledJobs"] == {"Ref": "SweeperReservedConcurrency"}
    total = sum(template["Parameters"][value["Ref"]]["Default"] for value in reserved.values())
    assert total <= 1000 - 100  # the default account quota, less what Lambda keeps unreserved


def test_package_refuses_a_worker_reserving_other_than_its_mapping_maximum(template):
    broken = json.loads(json.dumps(template))
    broken["Resources"]["ProcessWork"]["Properties"]["ReservedConcurrentExecutions"] = 10

    assert packaging.concurrency_problems(template) == []
    assert any("ProcessWork must reserve" in problem for problem in packaging.concurrency_problems(broken))


# -- retention ------------------------------------------------------------------


def test_job_ttl_is_derived_from_the_result_retention(template, resources, chalice_config):
    # A String parameter (it keys a mapping), so its values are quoted days.
    allowed = [int(days) for days in template["Parameters"]["ResultRetentionDays"]["AllowedValues"]]
    seconds = template["Mappings"]["RetentionSeconds"]

    assert sorted(seconds, key=int) == [str(days) for days in sorted(allowed)]
    assert all(seconds[str(days)]["Seconds"] == days * 86400 for days in allowed)
    for function in FUNCTIONS:
        assert env_of(resources, function)["JOB_TTL_SECONDS"] == {
            "Fn::FindInMap": ["RetentionSeconds", {"Ref": "ResultRetentionDays"}, "Seconds"]
        }
    # Stages outside the cloud stack set it themselves, within the template's default retention.
    default_retention_s = int(template["Parameters"]["ResultRetentionDays"]["Default"]) * 86400
    for settings in chalice_config["stages"].values():
        ttl = settings.get("environment_variables", {}).get("JOB_TTL_SECONDS")
        assert ttl is None or int(ttl) <= default_retention_s


def test_package_refuses_a_job_ttl_set_apart_from_the_retention(template):
    broken = json.loads(json.dumps(template))
    broken["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]["JOB_TTL_SECONDS"] = "604800"
    broken["Mappings"]["RetentionSeconds"]["7"]["Seconds"] = 86400

    assert packaging.retention_problems(template) == []
    assert len(packaging.retention_problems(broken)) == 2


# -- bucket access ----------------------------------------------------------------


def test_bucket_refuses_requests_without_tls(resources):
    policy = resources["StorageBucketPolicy"]["Properties"]

    assert policy["Bucket"] == {"Ref": "StorageBucket"}
    assert {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [{"Fn::GetAtt": ["StorageBucket", "Arn"]}, {"Fn::Sub": "${StorageBucket.Arn}/*"}],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    } in policy["PolicyDocument"]["Statement"]


def test_each_role_may_list_only_the_prefixes_it_heads_or_lists(resources):
    # API: heads sources, /health lists downloads/. Worker: heads sources, prunes results/<job>/.
    expected = {"APIHandler": ["downloads/*"], "ProcessWork": ["downloads/*", "results/*"], "SweepStalledJobs": None}
    for function, prefixes in expected.items():
        grants = [
            statement
            for statement in statements_of(role_of(resources, function))
            if "s3:ListBucket" in as_list(statement["Action"])
        ]
        if prefixes is None:
            assert grants == [], function
            continue
        assert len(grants) == 1 and as_list(grants[0]["Action"]) == ["s3:ListBucket"], function
        assert grants[0]["Condition"] == {"StringLike": {"s3:prefix": prefixes}}, function


# -- alarms ---------------------------------------------------------------------


def test_a_message_in_the_dead_letter_queue_raises_an_alarm(resources):
    alarm = resources["DeadLetterQueueNotEmptyAlarm"]["Properties"]

    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["Period"] * alarm["EvaluationPeriods"] <= 900
    assert alarm["TreatMissingData"] == "notBreaching"


# -- lint -----------------------------------------------------------------------


def test_packaged_template_passes_cfn_lint(build_dir):
    from cfnlint.api import lint  # cfn-lint is a dependency of moto[cloudformation]: missing means broken env

    matches = lint((build_dir / "sam.yaml").read_text(), regions=["us-east-1"])
    findings = [
        f"{match.rule.id} {match.message} (line {match.linenumber})"
        for match in matches
        if match.rule.id[0] in ("E", "W")
    ]

    assert findings == []


# -- webhooks ---------------------------------------------------------------------


def test_the_signing_secret_is_generated_by_the_stack_and_readable_only_by_the_worker(resources):
    secret = resources["CallbackSigningSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert "SecretString" not in secret["Properties"]
    for function in FUNCTIONS:
        env = env_of(resources, function)
        assert "CALLBACK_SIGNING_SECRET" not in env, function
        assert ("CALLBACK_SIGNING_SECRET_ARN" in env) == (function == "ProcessWork"), function
        reads = [
            statement
            for statement in statements_of(role_of(resources, function))
            if "secretsmanager:GetSecretValue" in as_list(statement["Action"])
        ]
        expected = [{"Ref": "CallbackSigningSecret"}] if function == "ProcessWork" else []
        assert [statement["Resource"] for statement in reads] == expected, function
    assert env_of(resources, "ProcessWork")["CALLBACK_SIGNING_SECRET_ARN"] == {"Ref": "CallbackSigningSecret"}


def test_the_cloud_stage_refuses_private_callbacks_and_retries_for_more_than_an_hour(chalice_config):
    env = chalice_config["stages"][STAGE]["environment_variables"]
    settings = Settings.from_env(env)

    assert "CALLBACK_SIGNING_SECRET" not in env
    assert settings.callback_allow_private is False
    schedule = RetrySchedule(settings.callback_max_attempts, settings.callback_retry_base_seconds)
    assert schedule.shortest_span() > 3600


# -- the code bundle ------------------------------------------------------------


def _fake_bundle(
    path: Path, distributions: dict[str, str], boto3_requires: str = "botocore (<1.45.0,>=1.44.5)"
) -> Path:
    """A zip holding only dist-info METADATA, as `chalice package` vendors them."""
    with zipfile.ZipFile(path, "w") as bundle:
        for name, version in distributions.items():
            requires = f"Requires-Dist: {boto3_requires}\nRequires-Dist: s3transfer (<0.20.0,>=0.19.0)\n"
            metadata = f"Name: {name}\nVersion: {version}\n" + (requires if name == "boto3" else "")
            bundle.writestr(f"{name}-{version}.dist-info/METADATA", metadata)
    return path


def test_the_bundle_carries_exactly_the_runtime_dependencies_pinned_in_requirements(build_dir):
    with zipfile.ZipFile(build_dir / "deployment.zip") as bundle:
        bundled = {name: version for name, (version, _) in packaging.bundled_distributions(bundle).items()}

    assert bundled == packaging.pinned_requirements()
    assert {"boto3", "botocore", "s3transfer", "urllib3"} <= set(bundled)


def test_the_bundles_botocore_is_one_its_boto3_declares(build_dir):
    with zipfile.ZipFile(build_dir / "deployment.zip") as bundle:
        distributions = packaging.bundled_distributions(bundle)
    boto3_metadata = distributions["boto3"][1]
    (declared,) = [
        line.partition(":")[2].strip()
        for line in boto3_metadata.splitlines()
        if line.startswith("Requires-Dist: botocore") and ";" not in line  # not an extra's
    ]

    assert packaging.sdk_problems(distributions) == []
    assert packaging.Requirement(declared).specifier.contains(distributions["botocore"][0]), declared


def test_package_refuses_a_botocore_outside_its_boto3s_range(tmp_path):
    bundle = _fake_bundle(tmp_path / "code.zip", {"boto3": "1.44.5", "botocore": "1.45.2", "s3transfer": "0.19.3"})

    problems = packaging.bundle_problems(bundle, {"boto3": "1.44.5", "botocore": "1.45.2", "s3transfer": "0.19.3"})

    assert problems == ["bundled botocore 1.45.2 is outside boto3's range botocore<1.45.0,>=1.44.5"]


def test_package_refuses_a_dependency_that_is_not_pinned(tmp_path):
    pins = {"boto3": "1.44.5", "botocore": "1.44.5", "s3transfer": "0.19.3"}
    bundle = _fake_bundle(tmp_path / "code.zip", {**pins, "wrapt": "9.9.9"})

    assert packaging.bundle_problems(bundle, pins) == ["wrapt: bundled 9.9.9, pinned None in requirements.txt"]


def test_package_refuses_a_bundle_without_boto3(tmp_path):
    bundle = _fake_bundle(tmp_path / "code.zip", {"botocore": "1.44.18"})

    assert packaging.bundle_problems(bundle, {"botocore": "1.44.18"}) == [
        "the bundle carries no boto3: Lambda's own would run on the bundle's botocore"
    ]


def test_every_module_in_the_bundle_has_an_unchecked_pyc_for_the_functions_python(build_dir, resources):
    (runtime,) = {function_props(resources, name)["Runtime"] for name in FUNCTIONS}
    tag = "cpython-" + runtime.removeprefix("python").replace(".", "")
    with zipfile.ZipFile(build_dir / "deployment.zip") as bundle:
        names = set(bundle.namelist())
        sources = sorted(name for name in names if name.endswith(".py"))
        missing = [
            source
            for source in sources
            if f"{Path(source).parent / '__pycache__' / Path(source).stem}.{tag}.pyc".removeprefix("./") not in names
        ]
        # PEP 552: the flags word after the magic number; 0b01 = hash-based, source not checked.
        flags = int.from_bytes(bundle.read(f"chalicelib/__pycache__/runtime.{tag}.pyc")[4:8], "little")

    assert runtime == f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert len(sources) > 500 and missing == []
    assert flags == 0b01


def test_the_bundle_holds_each_name_once_and_no_pyc_but_its_own(build_dir):
    """A byte-compiled source tree (make lint compiles it) must not leave timestamped .pyc beside ours."""
    with zipfile.ZipFile(build_dir / "deployment.zip") as bundle:
        names = bundle.namelist()
        flags = {name: int.from_bytes(bundle.read(name)[4:8], "little") for name in names if name.endswith(".pyc")}

    assert len(names) == len(set(names))
    assert set(flags.values()) == {0b01}


def test_package_drops_the_pyc_a_source_tree_brought(tmp_path):
    bundle = _fake_bundle(tmp_path / "code.zip", {"boto3": "1.44.5"})
    with zipfile.ZipFile(bundle, "a") as code:
        code.writestr("chalicelib/__pycache__/stale.cpython-311.pyc", b"stale")
        code.writestr("chalicelib/stale.py", "X = 1\n")
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"

    packaging.compile_bundle(bundle, runtime)

    with zipfile.ZipFile(bundle) as code:
        names = code.namelist()
        stale = code.read(f"chalicelib/__pycache__/stale.cpython-{sys.version_info.major}{sys.version_info.minor}.pyc")
    assert len(names) == len(set(names)) and stale != b"stale"


def test_package_refuses_to_compile_for_another_python(tmp_path):
    bundle = _fake_bundle(tmp_path / "code.zip", {"boto3": "1.44.5"})

    with pytest.raises(packaging.PackagingError, match="python3.99"):
        packaging.compile_bundle(bundle, "python3.99")
