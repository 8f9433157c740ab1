"""Metrics leave as one EMF line per invocation, only when something was recorded."""

from __future__ import annotations

import pytest

from chalicelib import metrics
from chalicelib.metrics import Metric
from scripts.stats import emf_records


@pytest.fixture(autouse=True)
def nothing_pending(capsys):
    """What other tests in this process recorded leaves before each test here."""
    metrics.flush()
    capsys.readouterr()


def emf_lines(text: str) -> list[dict]:
    return list(emf_records(text.splitlines()))


def test_an_invocation_writes_its_metrics_as_one_emf_line(capsys):
    metrics.record(Metric.FILES_PREPARED)
    metrics.record(Metric.FILES_PREPARED)
    metrics.record(Metric.FILE_WAIT_SECONDS, 1.5)

    metrics.flush()

    [line] = emf_lines(capsys.readouterr().out)
    declared = {m["Name"]: m["Unit"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Delineate"
    assert declared == {"FilesPrepared": "Count", "FileWaitSeconds": "Seconds"}
    assert line["FilesPrepared"] == [1.0, 1.0] and line["FileWaitSeconds"] == [1.5]


def test_nothing_recorded_writes_nothing(capsys):
    metrics.flush()

    assert emf_lines(capsys.readouterr().out) == []


def test_the_middleware_flushes_even_when_the_handler_raises(capsys):
    def handler(event):
        metrics.record(Metric.BUNDLE_BYTES, 2048)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        metrics.flush_after({}, handler)

    [line] = emf_lines(capsys.readouterr().out)
    assert line["BundleBytes"] == [2048.0]


@pytest.mark.parametrize(
    ("metric", "unit"),
    [(Metric.JOB_DURATION_SECONDS, "Seconds"), (Metric.BUNDLE_BYTES, "Bytes"), (Metric.JOBS_FAILED, "Count")],
)
def test_the_unit_follows_the_name(metric, unit):
    assert metric.unit == unit


@pytest.mark.parametrize(("status", "name"), [(429, "ThrottledRequests"), (503, "UnavailableResponses")])
def test_the_apis_own_refusals_are_counted_as_the_client_sees_them(capsys, status, name):
    from chalice import Response

    metrics.flush_after(object(), lambda event: Response(body="", status_code=status))

    [line] = emf_lines(capsys.readouterr().out)
    assert line[name] == [1.0]


def test_other_answers_and_non_http_events_record_nothing(capsys):
    from chalice import Response

    metrics.flush_after(object(), lambda event: Response(body="", status_code=404))
    metrics.flush_after({"Records": []}, lambda event: {"batchItemFailures": []})

    assert emf_lines(capsys.readouterr().out) == []


def test_the_metrics_middleware_wraps_the_http_one():
    import app

    order = [func for func, _ in app.app.middleware_handlers]

    assert order.index(metrics.flush_after) == 0
