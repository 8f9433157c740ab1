"""docker-compose.localstack.yml, checked offline (no Docker needed).

The compose file is for developers with Docker; nothing here runs it. These
tests pin what would otherwise break silently: a floating image tag, a port
open beyond loopback, a healthcheck that turns green before the stack exists,
or an init hook that deploys something other than infra/template.yaml.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.localstack.yml"
TEMPLATE = ROOT / "infra" / "template.yaml"
HOOK = ROOT / "infra" / "localstack" / "ready.d" / "10-deploy-infra.sh"
READY_D = PurePosixPath("/etc/localstack/init/ready.d")
NEEDED_SERVICES = {"cloudformation"}  # deploys the template; the rest follow from its resource types
HOST_MODE_RUNNER = ROOT / "scripts" / "localstack.sh"


def services_the_template_needs() -> set[str]:
    """AWS::DynamoDB::Table -> dynamodb, AWS::CloudWatch::Alarm -> cloudwatch, ..."""
    text = TEMPLATE.read_text()
    return {kind.split("::")[1].lower() for kind in re.findall(r"Type: (AWS::\w+::\w+)", text)}


@pytest.fixture(scope="module")
def localstack() -> dict:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    return compose["services"]["localstack"]


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # both compose spellings: KEY=value list or mapping
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _mounts(service: dict) -> list[tuple[Path, PurePosixPath, str]]:
    """(host path, container path, mode) for each short-syntax bind mount."""
    mounts = []
    for volume in service.get("volumes", []):
        host, container, *mode = volume.split(":")
        mounts.append(((ROOT / host).resolve(), PurePosixPath(container), mode[0] if mode else "rw"))
    return mounts


def _host_path(service: dict, container_path: PurePosixPath) -> Path | None:
    """Where a container path comes from on the host, through the bind mounts."""
    for host, container, _ in _mounts(service):
        if container_path == container or container in container_path.parents:
            return host / container_path.relative_to(container)
    return None


def test_compose_file_parses_with_one_localstack_service(localstack):
    assert localstack["image"].startswith("localstack/localstack:")


def test_image_is_pinned_to_a_version_not_latest(localstack):
    _, _, tag = localstack["image"].partition(":")
    assert tag and tag != "latest"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"tag {tag!r} is not an exact version"


def test_gateway_is_published_on_loopback_only(localstack):
    assert localstack["ports"] == ["127.0.0.1:4566:4566"]


def test_services_include_everything_the_template_needs(localstack):
    services = set(_environment(localstack)["SERVICES"].split(","))
    assert NEEDED_SERVICES | services_the_template_needs() <= services
    # The table's SSESpecification makes LocalStack create a KMS key.
    assert "kms" in services


def test_healthcheck_waits_for_health_and_for_the_deploy_hook(localstack):
    check = localstack["healthcheck"]
    command = " ".join(check["test"]) if isinstance(check["test"], list) else check["test"]
    assert "/_localstack/health" in command
    assert "/_localstack/init/ready" in command
    assert check["retries"] >= 1 and check["interval"]


def test_infra_is_mounted_read_only(localstack):
    modes = {host: mode for host, _, mode in _mounts(localstack)}
    assert modes.get(ROOT / "infra") == "ro"


def test_hook_directory_is_mounted_into_ready_d(localstack):
    assert _host_path(localstack, READY_D / HOOK.name) == HOOK


def test_init_hook_exists_and_is_an_executable_shell_script():
    assert HOOK.is_file()
    assert os.access(HOOK, os.X_OK), f"chmod +x {HOOK.relative_to(ROOT)}"
    assert HOOK.read_text().startswith("#!/bin/bash\n")


def test_init_hook_is_executable_in_git_once_tracked():
    """A fresh clone takes the mode from git, not from this working tree."""
    staged = subprocess.run(
        ["git", "ls-files", "--stage", "--", str(HOOK.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    if not staged:
        pytest.skip("hook not tracked by git yet")
    assert staged.startswith("100755 "), f"git mode is {staged.split()[0]}; use git add --chmod=+x"


def test_init_hook_deploys_the_same_template_with_cloudformation_deploy(localstack):
    hook = HOOK.read_text()
    assert "awslocal cloudformation deploy" in hook
    assert '"${DELINEATE_STACK_NAME:-delineate}"' in hook
    # The template the hook reads, mapped back through the compose mounts, is
    # the repository's one infra/template.yaml.
    default = re.search(r'DELINEATE_TEMPLATE:-([^}"]+)', hook).group(1)
    configured = _environment(localstack).get("DELINEATE_TEMPLATE", default)
    for container_path in {default, configured}:
        assert _host_path(localstack, PurePosixPath(container_path)) == TEMPLATE
    assert TEMPLATE.is_file()


def test_stack_name_is_taken_from_the_environment_with_the_documented_default(localstack):
    assert _environment(localstack)["DELINEATE_STACK_NAME"] == "${DELINEATE_STACK_NAME:-delineate}"


def test_host_mode_starts_the_same_services_as_compose(localstack):
    [line] = [line for line in HOST_MODE_RUNNER.read_text().splitlines() if line.startswith("SERVICES=")]
    assert set(line.split("=", 1)[1].strip('"').split(",")) == set(_environment(localstack)["SERVICES"].split(","))
