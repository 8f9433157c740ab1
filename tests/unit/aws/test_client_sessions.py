"""One boto3 Session per process, each client built on first use, X-Ray only with somewhere to send to."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from chalice.test import Client

import chalicelib.aws.clients
from chalicelib import runtime
from chalicelib.aws import tracing
from chalicelib.aws.clients import API_CONFIG, WORKER_CONFIG, make_clients, reset_session


class CountingSession:
    """Stands in for boto3.session.Session: records what was built, builds nothing."""

    made: list[CountingSession] = []

    def __init__(self) -> None:
        self.built: list[str] = []
        CountingSession.made.append(self)

    def client(self, service: str, config=None) -> SimpleNamespace:
        self.built.append(service)
        return SimpleNamespace(service=service, config=config)

    def resource(self, service: str, config=None) -> SimpleNamespace:
        self.built.append(f"{service} resource")
        return SimpleNamespace(service=service, config=config, Table=lambda name: SimpleNamespace(name=name))


@pytest.fixture
def sessions(monkeypatch) -> list[CountingSession]:
    CountingSession.made = []
    monkeypatch.setattr(
        chalicelib.aws.clients, "boto3", SimpleNamespace(session=SimpleNamespace(Session=CountingSession))
    )
    reset_session()
    yield CountingSession.made
    reset_session()


def test_making_clients_builds_nothing_until_a_client_is_used(sessions):
    clients = make_clients(API_CONFIG)

    assert sessions == []
    assert clients.sqs is clients.sqs
    assert [session.built for session in sessions] == [["sqs"]]


def test_every_role_builds_its_clients_from_the_one_session(sessions):
    api, worker = make_clients(API_CONFIG), make_clients(WORKER_CONFIG)

    api.dynamodb, api.s3, worker.sqs, worker.dynamodb  # noqa: B018 - first use builds them

    assert len(sessions) == 1
    assert sorted(sessions[0].built) == ["dynamodb resource", "dynamodb resource", "s3", "sqs"]


def test_answering_get_root_builds_no_session_and_no_client(sessions):
    runtime.reset()
    import app

    with Client(app.app) as client:
        response = client.http.get("/")

    assert response.status_code == 200
    assert sessions == []


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, False),
        ({"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"}, True),  # Lambda with active tracing
        ({"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000", "AWS_XRAY_SDK_ENABLED": "false"}, False),
        ({"AWS_XRAY_SDK_ENABLED": "true"}, True),
    ],
)
def test_tracing_is_on_only_with_a_daemon_or_when_asked(monkeypatch, environment, expected):
    monkeypatch.delenv("AWS_XRAY_SDK_ENABLED", raising=False)
    monkeypatch.delenv("AWS_XRAY_DAEMON_ADDRESS", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert tracing.enabled() is expected
