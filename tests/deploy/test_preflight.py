"""scripts/deploy_preflight.py: the reserved-concurrency arithmetic `make deploy` runs before it changes anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts import deploy_preflight as preflight

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy_preflight.py"


def settings(quota: int, unreserved: int | None = None) -> dict:
    """The shape of `aws lambda get-account-settings`."""
    return {
        "AccountLimit": {
            "ConcurrentExecutions": quota,
            "UnreservedConcurrentExecutions": quota if unreserved is None else unreserved,
        }
    }


@pytest.fixture
def template() -> dict:
    """The three functions and parameters as infra/chalice-overrides.yaml declares them (defaults 100 + 50 + 1)."""

    def function(parameter: str, name: str) -> dict:
        return {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "FunctionName": {"Fn::Sub": "${AWS::StackName}-" + name},
                "ReservedConcurrentExecutions": {"Ref": parameter},
            },
        }

    return {
        "Parameters": {
            "ApiReservedConcurrency": {"Type": "Number", "Default": 100, "MinValue": 10},
            "WorkerMaximumConcurrency": {"Type": "Number", "Default": 50, "MinValue": 2},
            "SweeperReservedConcurrency": {"Type": "Number", "Default": 1, "MinValue": 1},
        },
        "Resources": {
            "APIHandler": function("ApiReservedConcurrency", "api_handler"),
            "ProcessWork": function("WorkerMaximumConcurrency", "process_work"),
            "SweepStalledJobs": function("SweeperReservedConcurrency", "sweep_stalled_jobs"),
            "WorkQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        },
    }


def test_defaults_fit_the_default_quota_of_1000(template):
    verdict = preflight.judge(preflight.reservations(template, {}), settings(1000))

    assert (verdict.reserved, verdict.available, verdict.fits) == (151, 900, True)


def test_a_new_account_with_a_quota_of_10_is_refused(template):
    found = preflight.reservations(template, {})
    verdict = preflight.judge(found, settings(10))

    assert not verdict.fits
    assert "no parameter values fit" in preflight.refusal(found, verdict)


def test_overrides_replace_the_defaults_they_name():
    overrides = preflight.parse_overrides("WorkerMaximumConcurrency=20 MaxReceiveCount=3 stray")

    assert overrides == {"WorkerMaximumConcurrency": "20", "MaxReceiveCount": "3"}


def test_an_override_that_leaves_fewer_than_100_unreserved_is_refused(template):
    found = preflight.reservations(template, {"WorkerMaximumConcurrency": "900"})
    verdict = preflight.judge(found, settings(1000))

    assert (verdict.reserved, verdict.fits) == (1001, False)


def test_exactly_100_left_unreserved_is_allowed(template):
    found = preflight.reservations(template, {"WorkerMaximumConcurrency": "799"})

    assert preflight.judge(found, settings(1000)).fits  # 100 + 799 + 1 = 900 = 1000 - 100


def test_other_functions_reservations_count_against_the_stack(template):
    found = preflight.reservations(template, {})

    assert not preflight.judge(found, settings(1000, unreserved=240)).fits  # 240 - 100 < 151


def test_an_update_gets_back_what_the_stack_already_reserves(template):
    found = preflight.reservations(template, {})
    # Another stack reserves 600 and this one 151: the account shows 249 unreserved.
    account = settings(1000, unreserved=249)

    assert not preflight.judge(found, account).fits  # a new stack: 249 - 100 < 151
    assert preflight.judge(found, account, already_reserved=151).fits  # the update replaces its own 151


def test_the_refusal_suggests_values_that_fit_and_keeps_other_overrides(template):
    overrides = {"WorkerMaximumConcurrency": "900", "MaxReceiveCount": "3"}
    found = preflight.reservations(template, overrides)
    verdict = preflight.judge(found, settings(1000))

    message = preflight.refusal(found, verdict, overrides)

    suggested = preflight.parse_overrides(message.split('DEPLOY_PARAMETER_OVERRIDES="')[1].split('"')[0])
    assert suggested["MaxReceiveCount"] == "3"
    assert preflight.judge(preflight.reservations(template, suggested), settings(1000)).fits
    assert "L-B99A9384" in message


def test_suggestions_respect_each_parameters_minimum(template):
    found = preflight.reservations(template, {})

    fitting = preflight.suggestion(found, available=20)

    assert (
        fitting is not None and fitting["ApiReservedConcurrency"] >= 10 and fitting["SweeperReservedConcurrency"] == 1
    )
    assert sum(fitting.values()) <= 20


def test_function_names_resolve_the_stack_name(template):
    assert preflight.function_names(template, "delineate-prod") == [
        "delineate-prod-api_handler",
        "delineate-prod-process_work",
        "delineate-prod-sweep_stalled_jobs",
    ]


def test_the_command_exits_1_with_the_arithmetic_on_stderr(template, tmp_path):
    (tmp_path / "sam.yaml").write_text(yaml.safe_dump(template))
    (tmp_path / "settings.json").write_text(json.dumps(settings(200)))

    result = subprocess.run(
        [sys.executable, str(SCRIPT), "check", "--template", str(tmp_path / "sam.yaml")]
        + ["--account-settings", str(tmp_path / "settings.json")],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 1
    assert "would reserve 151" in result.stderr and "can give it only 100" in result.stderr
