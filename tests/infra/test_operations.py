"""What an operator watches: the alarms and the dashboard in infra/, and the metric names the code writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chalicelib.metrics import NAMESPACE, SERVICE, Metric
from scripts.package import load_cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = load_cfn_yaml(ROOT / "infra" / "chalice-overrides.yaml")["Resources"]
TEMPLATE = load_cfn_yaml(ROOT / "infra" / "template.yaml")["Resources"]
RESOURCES = {**TEMPLATE, **OVERRIDES}
ALARMS = {name: r["Properties"] for name, r in RESOURCES.items() if r.get("Type") == "AWS::CloudWatch::Alarm"}


def alarm_metrics(alarm: dict) -> set[tuple[str, str]]:
    if "MetricName" in alarm:
        return {(alarm["Namespace"], alarm["MetricName"])}
    return {
        (query["MetricStat"]["Metric"]["Namespace"], query["MetricStat"]["Metric"]["MetricName"])
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }


def dashboard_body() -> dict:
    template, variables = OVERRIDES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", template))
    assert names <= set(variables) | {"AWS::Region"}, names - set(variables)
    return json.loads(re.sub(r"\$\{[^}]+\}", "x", template))


@pytest.mark.parametrize(
    "metric",
    [
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),  # the dead-letter queue
        ("AWS/ApiGateway", "5XXError"),
        ("AWS/Lambda", "Throttles"),
        (NAMESPACE, Metric.WEBHOOK_FAILURES.value),
    ],
)
def test_each_failure_an_operator_must_hear_of_has_an_alarm(metric):
    assert any(metric in alarm_metrics(alarm) for alarm in ALARMS.values())


def test_every_alarm_notifies_the_alarm_topic_when_one_is_given():
    for name, alarm in ALARMS.items():
        assert alarm["AlarmActions"] == {
            "Fn::If": ["NotifyAlarms", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }, name


def test_the_throttle_alarm_covers_every_function():
    queries = ALARMS["LambdaThrottlesAlarm"]["Metrics"]
    functions = {q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"] for q in queries if "MetricStat" in q}

    assert functions == {"APIHandler", "ProcessWork", "SweepStalledJobs"}


def test_the_dashboard_shows_every_metric_the_code_writes_and_names_no_other():
    shown = {
        row[1]
        for widget in dashboard_body()["widgets"]
        for row in widget["properties"]["metrics"]
        if row[0] == NAMESPACE
    }
    dimensions = {
        tuple(row[2:4])
        for widget in dashboard_body()["widgets"]
        for row in widget["properties"]["metrics"]
        if row[0] == NAMESPACE
    }

    assert shown == {metric.value for metric in Metric}
    assert dimensions == {("service", SERVICE)}


def test_alarms_on_our_metrics_name_metrics_the_code_writes():
    ours = {name for alarm in ALARMS.values() for namespace, name in alarm_metrics(alarm) if namespace == NAMESPACE}

    assert ours and ours <= {metric.value for metric in Metric}


def test_every_metric_is_recorded_by_some_module():
    sources = "\n".join(path.read_text() for path in (ROOT / "chalicelib").rglob("*.py"))

    unrecorded = [metric.name for metric in Metric if f"Metric.{metric.name}" not in sources]

    assert unrecorded == [], "on the dashboard but never written"
