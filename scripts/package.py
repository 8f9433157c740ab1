#!/usr/bin/env python
"""Builds the cloud deployment: build/<stage>/sam.yaml and deployment.zip.

    python scripts/package.py --stage prod [--out build/prod]

The data plane is defined once, in infra/template.yaml. This script merges it
with infra/chalice-overrides.yaml (the Chalice-specific amendments: roles,
references to the stack's resources, event source settings) into one merge
template, runs `chalice package --merge-template` with it, and checks the
result for the invariants a deploy would otherwise discover late (or never):
every function has its own role, the queue's visibility timeout covers the
worker, a batch fits in the worker's timeout, and so on.

The code bundle is finished here too: it must carry the runtime dependencies
pinned in requirements.txt and nothing else, with a botocore its boto3 accepts,
and every module is byte-compiled for the functions' Python, so a cold start
loads .pyc instead of compiling (Lambda's code directory is read-only).

`chalice package` needs no credentials, only a region; AWS_DEFAULT_REGION
defaults to us-east-1 here (the template itself is region-neutral).
"""

from __future__ import annotations

import argparse
import compileall
import copy
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "infra" / "template.yaml"
OVERRIDES = ROOT / "infra" / "chalice-overrides.yaml"
CHALICE_CONFIG = ROOT / ".chalice" / "config.json"
REQUIREMENTS = ROOT / "requirements.txt"

WORKER = "ProcessWork"
WORKER_EVENT = "ProcessWorkSqsEventSource"
# AWS: a queue that triggers a function should time messages out after at
# least six times the function's timeout, so a throttled or retried batch is
# not redelivered while it is still being worked on.
VISIBILITY_FACTOR = 6
DAY_SECONDS = 86400
# Lambda keeps this much of the account's concurrency unreserved, and refuses
# reservations that would leave less (of the default quota of 1,000).
UNRESERVED_MINIMUM = 100
DEFAULT_ACCOUNT_CONCURRENCY = 1000
START_RESOURCE_PATH = "/~1v1~1download~1start"
# Lambda: a deployment package may hold at most 250 MB unzipped (the function's
# code and its layers together; we use no layers).
UNZIPPED_LIMIT_BYTES = 250 * 1000 * 1000
# Where Lambda unpacks the code: the path tracebacks name.
LAMBDA_TASK_ROOT = "/var/task"


class PackagingError(RuntimeError):
    """The packaged template breaks an invariant of the deployment."""


class _NoAliasDumper(yaml.SafeDumper):
    """CloudFormation rejects YAML aliases ("YAML aliases are not allowed"), and
    Chalice's swagger shares lists (`consumes`), which PyYAML writes as &id001."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# -- CloudFormation YAML --------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short forms (!Ref, !GetAtt, !Sub, ...)
    as their long forms ({"Ref": ...}, {"Fn::GetAtt": [...]}, ...)."""


def _cfn_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> Any:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_cfn_yaml(path: Path) -> dict:
    """A CloudFormation YAML template as plain data, intrinsics in long form.

    The JSON round trip drops YAML aliases (a shared mapping would otherwise be
    written back as &id001 anchors) and proves the result is plain data.
    """
    with open(path, encoding="utf-8") as handle:
        return json.loads(json.dumps(yaml.load(handle, Loader=CfnLoader)))


# -- merge template -------------------------------------------------------------


def deep_merge(base: Any, amendment: Any) -> Any:
    """Same rule as Chalice's TemplateDeepMerger: mappings merge, anything else replaces."""
    if isinstance(base, dict) and isinstance(amendment, dict):
        merged = dict(base)
        for key, value in amendment.items():
            merged[key] = deep_merge(base.get(key), value)
        return merged
    return copy.deepcopy(amendment)


def build_merge_template(template: dict, overrides: dict) -> dict:
    """infra/template.yaml plus the Chalice amendments; the data plane stays defined once."""
    data_plane = set(template.get("Resources", {}))
    redefined = sorted(
        name for name, body in overrides.get("Resources", {}).items() if name in data_plane and "Type" in body
    )
    if redefined:
        raise PackagingError(
            f"chalice-overrides.yaml redefines data-plane resources: {redefined}; "
            "amend them in infra/template.yaml instead"
        )
    return deep_merge(template, overrides)


# -- checks ---------------------------------------------------------------------


def _functions(template: dict) -> dict[str, dict]:
    return {
        name: body for name, body in template["Resources"].items() if body.get("Type") == "AWS::Serverless::Function"
    }


def _stage_config(stage: str) -> dict:
    config = json.loads(CHALICE_CONFIG.read_text(encoding="utf-8"))
    return config.get("stages", {}).get(stage, {})


def _mixed_intrinsics(node: Any, path: str = "") -> list[str]:
    """Paths of mappings holding an intrinsic function next to other keys.

    Chalice's merge treats {"Fn::Sub": ...} as a mapping, so an override using
    a different function (say !GetAtt) is merged into it instead of replacing it.
    """
    found: list[str] = []
    if isinstance(node, dict):
        intrinsic = [key for key in node if key == "Ref" or key.startswith("Fn::")]
        if intrinsic and len(node) > 1:
            found.append(f"{path or '/'}: {sorted(node)}")
        for key, value in node.items():
            found += _mixed_intrinsics(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _mixed_intrinsics(value, f"{path}/{index}")
    return found


def check_packaged(template: dict, stage: str, overrides: dict) -> list[str]:
    """Every invariant the packaged template must hold; returns the violations."""
    problems: list[str] = [
        f"an override merged into a Chalice intrinsic at {path}"
        for path in _mixed_intrinsics(template.get("Resources", {}), "/Resources")
    ]
    untyped = sorted(name for name, body in template["Resources"].items() if "Type" not in body)
    if untyped:
        problems.append(f"overrides amend resources Chalice did not emit: {untyped}")
    functions = _functions(template)
    problems += _role_problems(template["Resources"], functions)
    worker = functions.get(WORKER)
    if worker is None:
        return problems + [f"no {WORKER} function in the packaged template"]
    problems += _worker_problems(worker, template["Parameters"]["VisibilityTimeoutSeconds"])
    return problems + _stage_problems(stage, overrides) + retention_problems(template) + concurrency_problems(template)


def _role_problems(resources: dict, functions: dict) -> list[str]:
    """Each function runs as its own role from chalice-overrides.yaml."""
    problems = []
    for name, function in functions.items():
        role = function["Properties"].get("Role")
        target = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None
        if resources.get(target, {}).get("Type") != "AWS::IAM::Role":
            problems.append(f"{name}: Role must be !GetAtt <its role>.Arn from chalice-overrides.yaml, got {role!r}")
    roles = [
        body["Properties"]["Role"]["Fn::GetAtt"][0]
        for body in functions.values()
        if isinstance(body["Properties"].get("Role"), dict)
    ]
    if len(set(roles)) != len(roles):
        problems.append(f"functions share a role: {roles}")
    return problems


def _worker_problems(worker: dict, visibility: dict) -> list[str]:
    """The queue's visibility outlasts the worker, a batch fits its timeout, failures are reported per item."""
    problems = []
    timeout = int(worker["Properties"]["Timeout"])
    for key in ("Default", "MinValue"):
        if int(visibility[key]) < VISIBILITY_FACTOR * timeout:
            problems.append(
                f"VisibilityTimeoutSeconds.{key}={visibility[key]} < "
                f"{VISIBILITY_FACTOR} x {WORKER} timeout ({timeout} s)"
            )
    event = worker["Properties"]["Events"][WORKER_EVENT]["Properties"]
    env = worker["Properties"].get("Environment", {}).get("Variables", {})
    delay_max_s = int(env.get("DOWNLOAD_DELAY_MAX_MS", "200000")) / 1000
    if int(event["BatchSize"]) * delay_max_s >= timeout:
        problems.append(
            f"BatchSize {event['BatchSize']} x {delay_max_s:g} s per file does not fit in the {timeout} s timeout"
        )
    if event.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
        problems.append("the SQS event source must report batch item failures")
    return problems


def _stage_problems(stage: str, overrides: dict) -> list[str]:
    """A stage's config.json must not shadow what the stack hands the functions."""
    stage_env = set(_stage_config(stage).get("environment_variables", {}))
    from_stack: set[str] = set()
    for body in overrides.get("Resources", {}).values():
        from_stack |= set(body.get("Properties", {}).get("Environment", {}).get("Variables", {}))
    shadowed = sorted(stage_env & from_stack)
    if shadowed:
        return [f".chalice/config.json stage {stage!r} sets {shadowed}, which come from the stack"]
    return []


def _default(template: dict, parameter: str) -> int:
    return int(template["Parameters"][parameter]["Default"])


def retention_problems(template: dict) -> list[str]:
    """JOB_TTL_SECONDS is ResultRetentionDays in seconds, for every value the parameter allows.

    A job that outlives its bundle would point at a deleted object.
    """
    allowed = {str(value) for value in template["Parameters"]["ResultRetentionDays"].get("AllowedValues", [])}
    mapping = template.get("Mappings", {}).get("RetentionSeconds", {})
    problems = (
        []
        if allowed and allowed == set(mapping)
        else [
            f"ResultRetentionDays.AllowedValues {sorted(allowed)} and Mappings.RetentionSeconds {sorted(mapping)} differ"
        ]
    )
    problems += [
        f"RetentionSeconds[{days}] is {entry['Seconds']}, not {days} days"
        for days, entry in mapping.items()
        if int(entry["Seconds"]) != int(days) * DAY_SECONDS
    ]
    derived = {"Fn::FindInMap": ["RetentionSeconds", {"Ref": "ResultRetentionDays"}, "Seconds"]}
    problems += [
        f"{name}: JOB_TTL_SECONDS must be derived from ResultRetentionDays ({derived})"
        for name, function in _functions(template).items()
        if function["Properties"].get("Environment", {}).get("Variables", {}).get("JOB_TTL_SECONDS") != derived
    ]
    return problems


def concurrency_problems(template: dict) -> list[str]:
    """Every function reserves concurrency, the worker exactly its SQS MaximumConcurrency, within the account."""
    functions = _functions(template)
    reserved = {name: body["Properties"].get("ReservedConcurrentExecutions") for name, body in functions.items()}
    problems = [f"{name} reserves no concurrency" for name, value in reserved.items() if value is None]
    if reserved.get(WORKER) != {"Ref": "WorkerMaximumConcurrency"}:
        problems.append(f"{WORKER} must reserve WorkerMaximumConcurrency, the SQS mapping's MaximumConcurrency")
    defaults = sum(_default(template, value["Ref"]) for value in reserved.values() if isinstance(value, dict))
    if defaults > DEFAULT_ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM:
        problems.append(f"default reservations ({defaults}) leave less than {UNRESERVED_MINIMUM} unreserved")
    return problems + _start_throttle_problems(template)


def _start_throttle_problems(template: dict) -> list[str]:
    """/start holds an invocation up to START_WAIT_MS: its throttled rate x that wait must fit the API's reservation."""
    api = template["Resources"]["APIHandler"]["Properties"]
    settings = {
        item["ResourcePath"]: item for item in template["Resources"]["RestAPI"]["Properties"].get("MethodSettings", [])
    }
    start = settings.get(START_RESOURCE_PATH)
    if "/*" not in settings or start is None:
        return [f"RestAPI.MethodSettings must throttle the stage (/*) and {START_RESOURCE_PATH}"]
    wait_s = int(api["Environment"]["Variables"]["START_WAIT_MS"]) / 1000
    held = _default(template, start["ThrottlingRateLimit"]["Ref"]) * wait_s
    if held >= _default(template, api["ReservedConcurrentExecutions"]["Ref"]):
        return [f"/start at its throttled rate holds {held:g} invocations, the API's whole reservation"]
    return []


# -- the code bundle ------------------------------------------------------------

_DIST_INFO = re.compile(r"^([^/]+)-([^-/]+)\.dist-info/METADATA$")


def pinned_requirements(path: Path = REQUIREMENTS) -> dict[str, str]:
    """name -> version of each `name==version` line (comments and blank lines skipped)."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            requirement = Requirement(text)
            (spec,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def bundled_distributions(bundle: zipfile.ZipFile) -> dict[str, tuple[str, str]]:
    """name -> (version, METADATA text) of every distribution vendored in the zip."""
    found = {}
    for name in bundle.namelist():
        match = _DIST_INFO.match(name)
        if match:
            metadata = bundle.read(name).decode("utf-8", errors="replace")
            found[canonicalize_name(match.group(1))] = (match.group(2), metadata)
    return found


def _requires(metadata: str, dependency: str) -> Requirement | None:
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:"):
            requirement = Requirement(line.partition(":")[2].strip())
            if canonicalize_name(requirement.name) == dependency and requirement.marker is None:
                return requirement
    return None


def sdk_problems(distributions: dict[str, tuple[str, str]]) -> list[str]:
    """boto3 only works with the botocore and s3transfer its METADATA declares."""
    if "boto3" not in distributions:
        return ["the bundle carries no boto3: Lambda's own would run on the bundle's botocore"]
    problems = []
    for dependency in ("botocore", "s3transfer"):
        requirement = _requires(distributions["boto3"][1], dependency)
        bundled = distributions.get(dependency)
        if requirement is None or bundled is None:
            problems.append(f"the bundle's boto3 and {dependency}: {requirement}, bundled {bundled and bundled[0]}")
        elif Version(bundled[0]) not in requirement.specifier:
            problems.append(f"bundled {dependency} {bundled[0]} is outside boto3's range {requirement}")
    return problems


def bundle_problems(zip_path: Path, pins: dict[str, str]) -> list[str]:
    """The bundle carries exactly the pinned runtime set, a consistent SDK, within Lambda's size limit."""
    with zipfile.ZipFile(zip_path) as bundle:
        distributions = bundled_distributions(bundle)
        unzipped = sum(info.file_size for info in bundle.infolist())
    bundled = {name: version for name, (version, _) in distributions.items()}
    problems = [
        f"{name}: bundled {bundled.get(name)}, pinned {pins.get(name)} in requirements.txt"
        for name in sorted(set(bundled) | set(pins))
        if bundled.get(name) != pins.get(name)
    ]
    if unzipped > UNZIPPED_LIMIT_BYTES:
        problems.append(f"the bundle unzips to {unzipped} bytes, over Lambda's {UNZIPPED_LIMIT_BYTES}")
    return problems + sdk_problems(distributions)


def function_runtimes(template: dict) -> set[str]:
    return {body["Properties"]["Runtime"] for body in _functions(template).values()}


def _is_bytecode(name: str) -> bool:
    return name.endswith(".pyc") or "/__pycache__/" in f"/{name}"


def compile_bundle(zip_path: Path, runtime: str) -> int:
    """Adds __pycache__/*.pyc for every module in the zip; returns how many.

    Lambda unpacks the code into a read-only directory, so Python cannot cache
    what it compiles: without .pyc in the zip every cold start compiles every
    module it imports. Unchecked-hash .pyc are used without looking at the
    source's mtime (which unzipping does not preserve exactly) or hashing it:
    the bundle is never edited in place. They are only valid for the Python
    that wrote them, so this interpreter must be the functions' runtime.
    """
    ours = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != ours:
        raise PackagingError(f"the functions run {runtime} but the package is built with {ours}: .pyc would not load")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with zipfile.ZipFile(zip_path) as bundle:
            # chalice copies chalicelib/ whole, __pycache__ included when the tree was byte-compiled
            # (make lint does): those .pyc check timestamps and name this machine's paths, so they go.
            entries = [entry for entry in bundle.infolist() if not _is_bytecode(entry.filename)]
            bundle.extractall(root, members=entries)
        compileall.compile_dir(
            root,
            quiet=2,
            stripdir=str(root),
            prependdir=LAMBDA_TASK_ROOT,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        compiled = sorted(path for path in root.rglob("*.pyc"))
        rewritten = zip_path.with_suffix(".tmp")
        with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
            for entry in entries:
                target.writestr(entry, source.read(entry))
            for path in compiled:
                info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                target.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        rewritten.replace(zip_path)
    return len(compiled)


# -- chalice package ------------------------------------------------------------


def run_chalice_package(stage: str, merge_template: Path, outdir: Path) -> None:
    chalice = Path(sys.executable).with_name("chalice")
    command = [
        str(chalice) if chalice.exists() else "chalice",
        "package",
        "--stage",
        stage,
        "--merge-template",
        str(merge_template),
        str(outdir),
    ]
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def package(stage: str, outdir: Path) -> Path:
    """Writes <outdir>/sam.yaml and deployment.zip; returns the template's path."""
    if _stage_config(stage).get("manage_iam_role") is not False:
        raise PackagingError(
            f'stage {stage!r} is not a cloud stage: it needs "manage_iam_role": false '
            "so the roles of infra/chalice-overrides.yaml are used"
        )
    overrides = load_cfn_yaml(OVERRIDES)
    merged = build_merge_template(load_cfn_yaml(TEMPLATE), overrides)
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    merge_template = outdir / "merge-template.yaml"
    merge_template.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
    run_chalice_package(stage, merge_template, outdir)

    sam = outdir / "sam.yaml"
    packaged = yaml.safe_load(sam.read_text(encoding="utf-8"))
    sam.write_text(yaml.dump(packaged, Dumper=_NoAliasDumper, allow_unicode=True), encoding="utf-8")
    problems = check_packaged(packaged, stage, overrides)
    code = outdir / "deployment.zip"
    problems += bundle_problems(code, pinned_requirements())
    if problems:
        raise PackagingError("packaged template is not deployable:\n  - " + "\n  - ".join(problems))
    (runtime,) = function_runtimes(packaged)
    compile_bundle(code, runtime)
    return sam


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE", "prod"))
    parser.add_argument("--out", type=Path, help="output directory (default: build/<stage>)")
    args = parser.parse_args(argv)
    outdir = (args.out or ROOT / "build" / args.stage).resolve()
    try:
        sam = package(args.stage, outdir)
    except (PackagingError, subprocess.CalledProcessError) as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    print(
        f"package: wrote {sam.relative_to(ROOT) if sam.is_relative_to(ROOT) else sam} "
        f"and {sam.with_name('deployment.zip').name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
