"""The artifact tier: build/prod/deployment.zip, unpacked read-only, each function in a fresh interpreter
against the embedded emulator (moto server, as `make dev` runs it) holding infra/template.yaml's resources.

`make test-artifact` names the zip in DELINEATE_ARTIFACT, and `make test` leaves
this folder out (--ignore), so no test run picks up a stale build/ left from another commit.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import boto3
import pytest
from botocore.config import Config

from chalicelib.local import bootstrap
from chalicelib.local.processes import env_with_pythonpath, free_port, python_module, spawn, stop_all
from chalicelib.polling import wait_until
from tests.artifact.bundle import ROOT, FunctionHost, function_host, make_writable, unpack_read_only

ARTIFACT_ENV = "DELINEATE_ARTIFACT"
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
STACK_PARAMETERS = {"VisibilityTimeoutSeconds": "60", "MaxReceiveCount": "3"}
# What `!Ref <logical id>` gives a function, read from the stack output that carries it.
REF_OUTPUTS = {
    "JobsTable": "JobsTableName",
    "WorkQueue": "WorkQueueUrl",
    "DeadLetterQueue": "DeadLetterQueueUrl",
    "StorageBucket": "BucketName",
}
# The only settings changed from the packaged ones: files are ready at once, not after 10-200 s.
TEST_SETTINGS = {"DOWNLOAD_DELAY_ENABLED": "false"}


def _load_packaging() -> Any:
    spec = importlib.util.spec_from_file_location("delineate_package_script", ROOT / "scripts" / "package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Emulator:
    endpoint: str

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, **CREDENTIALS}

    def client(self, service: str) -> Any:
        return boto3.session.Session(region_name=REGION, **_lower(CREDENTIALS)).client(
            service, endpoint_url=self.endpoint, config=Config(retries={"max_attempts": 2}, read_timeout=20)
        )


def _lower(credentials: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in credentials.items()}


@dataclass
class Stack:
    outputs: dict[str, str]
    physical: dict[str, str]  # logical id -> what Ref gives (a queue's URL, a table's name, a secret's ARN)
    template: dict  # the packaged sam.yaml

    def resolve(self, value: Any) -> str:
        """The value CloudFormation would give a function's environment variable."""
        if isinstance(value, str):
            return value
        if "Ref" in value:
            name = value["Ref"]
            if name in self.physical:
                return self.physical[name]
            return str(STACK_PARAMETERS.get(name, self.template["Parameters"][name].get("Default")))
        if "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "QueueName":
            return self.physical[value["Fn::GetAtt"][0]].rsplit("/", 1)[1]
        if "Fn::FindInMap" in value:
            mapping, key, entry = value["Fn::FindInMap"]
            return str(self.template["Mappings"][mapping][self.resolve(key)][entry])
        raise AssertionError(f"no emulated value for {value}")

    def function_env(self, logical_id: str, emulator: Emulator) -> dict[str, str]:
        """The function's Environment from sam.yaml, resolved, plus what Lambda itself sets."""
        properties = self.template["Resources"][logical_id]["Properties"]
        variables = {name: self.resolve(value) for name, value in properties["Environment"]["Variables"].items()}
        return {
            **variables,
            **TEST_SETTINGS,
            **emulator.env(),
            "AWS_LAMBDA_FUNCTION_NAME": logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties["MemorySize"]),
            "FUNCTION_TIMEOUT_SECONDS": str(properties["Timeout"]),
        }

    def handlers(self) -> dict[str, str]:
        return {
            name: body["Properties"]["Handler"]
            for name, body in self.template["Resources"].items()
            if body["Type"] == "AWS::Serverless::Function"
        }


@pytest.fixture(scope="session")
def artifact_zip() -> Path:
    named = os.environ.get(ARTIFACT_ENV)
    if not named:
        pytest.fail(f"the artifact tier runs from `make test-artifact` ({ARTIFACT_ENV} names the zip)")
    path = Path(named) if Path(named).is_absolute() else ROOT / named
    assert path.is_file(), f"{path} is missing: run `make package STAGE=prod` first"
    return path


@pytest.fixture(scope="session")
def code_dir(artifact_zip, tmp_path_factory) -> Iterator[Path]:
    directory = unpack_read_only(artifact_zip, tmp_path_factory.mktemp("lambda") / "task")
    yield directory
    make_writable(directory)


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def emulator(artifact_zip, logs_dir) -> Iterator[Emulator]:
    """`make dev`'s embedded emulator, started as the dev stack starts it."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    process = spawn(
        python_module("chalicelib.local.emulator", "-H", "127.0.0.1", "-p", str(port)),
        env_with_pythonpath({**env, **CREDENTIALS}),
        logs_dir / "emulator.log",
    )
    emulator = Emulator(f"http://127.0.0.1:{port}")

    def answering() -> bool:
        assert process.poll() is None, (logs_dir / "emulator.log").read_text()
        try:
            emulator.client("sts").get_caller_identity()
            return True
        except Exception:  # not listening yet
            return False

    try:
        wait_until(answering, timeout=60, interval=0.2, what="the embedded emulator")
        yield emulator
    finally:
        stop_all([process])


@pytest.fixture(scope="session")
def stack(artifact_zip, emulator) -> Stack:
    """infra/template.yaml deployed by the dev stack's bootstrap; the secret the stack's overrides add, too."""
    with mock.patch.dict(os.environ, emulator.env()):
        outputs = bootstrap.deploy("artifact", STACK_PARAMETERS)
    physical = {logical: outputs[output] for logical, output in REF_OUTPUTS.items()}
    secret = emulator.client("secretsmanager").create_secret(
        Name="artifact-callback-signing", SecretString=secrets.token_hex(32)
    )
    physical["CallbackSigningSecret"] = secret["ARN"]
    template = _load_packaging().load_cfn_yaml(artifact_zip.with_name("sam.yaml"))
    return Stack(outputs, physical, template)


@pytest.fixture(scope="session")
def functions(stack, emulator, code_dir, logs_dir) -> Iterator[dict[str, FunctionHost]]:
    """Every function of the packaged template, by handler name (app.app, app.process_work, ...)."""
    from contextlib import ExitStack

    with ExitStack() as hosts:
        yield {
            handler: hosts.enter_context(
                function_host(code_dir, handler, stack.function_env(name, emulator), logs_dir / f"{name}.log")
            )
            for name, handler in stack.handlers().items()
        }


@pytest.fixture(scope="session")
def api_key(stack, emulator) -> str:
    """A key issued as `make api-key` issues one: the packaged API requires keys."""
    from chalicelib.keys.store import KeyStore

    dynamodb = boto3.session.Session(region_name=REGION, **_lower(CREDENTIALS)).resource(
        "dynamodb", endpoint_url=emulator.endpoint
    )
    return KeyStore(dynamodb.Table(stack.outputs["JobsTableName"])).create("artifact-tier").key


@pytest.fixture(autouse=True)
def _emulator_is_the_aws_of_this_tier(request, monkeypatch):
    """tests/support/aws.py's helpers build default clients: point them at the emulator."""
    if "emulator" in request.fixturenames:
        for name, value in request.getfixturevalue("emulator").env().items():
            monkeypatch.setenv(name, value)
