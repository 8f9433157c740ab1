"""A Lambda runtime executor that runs nothing, for LocalStack in host mode (no Docker).

LocalStack's Lambda provider prepares every function version through the
selected executor (`localstack.lambda.runtime_executor` plugins; the only
built-in one, "docker", fails without a Docker engine and leaves the function
in state Failed, so CloudFormation never completes the stack). This one
prepares nothing, so functions, event source mappings and schedules are
created as on AWS; an invocation fails at once instead of hanging.
"""

from __future__ import annotations

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor

REFUSAL = "LAMBDA_RUNTIME_EXECUTOR=noop: functions are deployed but never run (host mode has no Docker)"


class NoopRuntimeExecutor(RuntimeExecutor):
    def start(self, env_vars: dict[str, str]) -> None:
        raise LambdaRuntimeException(REFUSAL)

    def stop(self) -> None:
        pass

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return "127.0.0.1"

    def get_runtime_endpoint(self) -> str:
        return "http://127.0.0.1/_localstack_lambda/noop"

    def invoke(self, payload: dict[str, str]):
        raise LambdaRuntimeException(REFUSAL)

    def get_logs(self) -> str:
        return ""

    @classmethod
    def prepare_version(cls, function_version) -> None:
        pass

    @classmethod
    def cleanup_version(cls, function_version) -> None:
        pass


class NoopRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = "noop"

    def load(self, *args, **kwargs):
        return NoopRuntimeExecutor
