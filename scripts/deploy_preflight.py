#!/usr/bin/env python
"""Deploy preflight: will the stack's reserved concurrency fit in the account?

Lambda refuses a reservation that would leave fewer than 100 of the account's
concurrent executions unreserved (the functions without a reservation share
those), and CloudFormation discovers it only half-way through the stack,
when PutFunctionConcurrency fails and the whole deployment rolls back. New
accounts often start with a quota far below the default 1,000 (10 is common),
so `scripts/deploy.sh deploy` asks first:

    deploy_preflight.py names --template build/prod/sam.yaml --stack-name delineate-prod
        the function names, one a line (deploy.sh reads their current reservations)
    deploy_preflight.py check --template build/prod/sam.yaml --account-settings settings.json \\
        [--overrides "WorkerMaximumConcurrency=20"] [--already-reserved 151]
        exit 0 when the stack fits; else exit 1 with the arithmetic and values that fit

--account-settings is the JSON of `aws lambda get-account-settings`;
--already-reserved is what the stack's functions reserve today (an update
gives that back before it takes the new values).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

# Lambda's floor: UnreservedConcurrentExecutions may not drop below this.
UNRESERVED_MINIMUM = 100
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# Service Quotas code of "Concurrent executions" (Lambda), for the refusal message.
QUOTA_CODE = "L-B99A9384"


@dataclass(frozen=True)
class Reservation:
    function: str
    parameter: str | None  # None: a literal in the template
    value: int
    minimum: int


@dataclass(frozen=True)
class Verdict:
    reserved: int
    available: int  # what the stack may reserve and still leave UNRESERVED_MINIMUM
    limit: int

    @property
    def fits(self) -> bool:
        return self.reserved <= self.available


def parse_overrides(text: str) -> dict[str, str]:
    """`Key=Value Key2=Value2`, the DEPLOY_PARAMETER_OVERRIDES form deploy.sh passes to the CLI."""
    pairs = (item.partition("=") for item in text.split())
    return {key: value for key, sep, value in pairs if sep}


def reservations(template: dict, overrides: dict[str, str]) -> list[Reservation]:
    """Each function's ReservedConcurrentExecutions, parameters resolved (override, else Default)."""
    parameters = template.get("Parameters", {})
    found = []
    for name, resource in sorted(template.get("Resources", {}).items()):
        if resource.get("Type") not in FUNCTION_TYPES:
            continue
        reserved = resource.get("Properties", {}).get("ReservedConcurrentExecutions")
        if reserved is None:
            continue
        if isinstance(reserved, dict) and set(reserved) == {"Ref"}:
            parameter = reserved["Ref"]
            spec = parameters[parameter]
            value = int(overrides.get(parameter, spec["Default"]))
            found.append(Reservation(name, parameter, value, int(spec.get("MinValue", 0))))
        else:
            found.append(Reservation(name, None, int(reserved), int(reserved)))
    return found


def function_names(template: dict, stack_name: str) -> list[str]:
    """FunctionName of each function (`!Sub "${AWS::StackName}-..."` resolved)."""
    names = []
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") in FUNCTION_TYPES:
            name = resource.get("Properties", {}).get("FunctionName")
            if isinstance(name, dict):
                name = name.get("Fn::Sub")
            if isinstance(name, str):
                names.append(name.replace("${AWS::StackName}", stack_name))
    return sorted(names)


def judge(found: list[Reservation], account_settings: dict, already_reserved: int = 0) -> Verdict:
    limit = account_settings["AccountLimit"]
    unreserved = int(limit["UnreservedConcurrentExecutions"]) + already_reserved
    return Verdict(
        reserved=sum(r.value for r in found),
        available=unreserved - UNRESERVED_MINIMUM,
        limit=int(limit["ConcurrentExecutions"]),
    )


def suggestion(found: list[Reservation], available: int) -> dict[str, int] | None:
    """Parameter values scaled down to fit `available`, each at least its MinValue; None if even those do not fit."""
    fixed = sum(r.value for r in found if r.parameter is None)
    tunable = [r for r in found if r.parameter is not None]
    if fixed + sum(r.minimum for r in tunable) > available:
        return None
    # Each keeps its minimum and a share of the rest in proportion to what it asked above it.
    floor = sum(r.minimum for r in tunable)
    above = sum(r.value - r.minimum for r in tunable) or 1
    spare = available - fixed - floor
    return {r.parameter: r.minimum + (r.value - r.minimum) * spare // above for r in tunable if r.parameter}


def refusal(found: list[Reservation], verdict: Verdict, overrides: dict[str, str] | None = None) -> str:
    """Why not, in numbers, and the overrides (the caller's others kept) that would fit."""
    lines = [
        f"deploy: the stack would reserve {verdict.reserved} concurrent executions, "
        f"but the account can give it only {max(verdict.available, 0)}",
        f"  (quota {verdict.limit}; Lambda keeps {UNRESERVED_MINIMUM} unreserved):",
    ]
    lines += [f"    {r.function}: {r.value} ({r.parameter or 'fixed in the template'})" for r in found]
    fitting = suggestion(found, verdict.available)
    if fitting:
        merged = {**(overrides or {}), **{key: str(value) for key, value in fitting.items()}}
        values = " ".join(f"{key}={value}" for key, value in merged.items())
        lines.append(f'  values that fit: DEPLOY_PARAMETER_OVERRIDES="{values}"')
    else:
        lines.append("  no parameter values fit: even their minimums exceed what is left.")
    lines.append(f"  or ask for a higher quota: Service Quotas, AWS Lambda, 'Concurrent executions' ({QUOTA_CODE}).")
    return "\n".join(lines)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    names = commands.add_parser("names", help="the stack's function names")
    names.add_argument("--template", type=Path, required=True)
    names.add_argument("--stack-name", required=True)
    check = commands.add_parser("check", help="refuse reservations the account cannot give")
    check.add_argument("--template", type=Path, required=True)
    check.add_argument("--account-settings", type=Path, required=True)
    check.add_argument("--overrides", default="")
    check.add_argument("--already-reserved", type=int, default=0)
    args = parser.parse_args(argv)

    template = _load(args.template)
    if args.command == "names":
        print("\n".join(function_names(template, args.stack_name)))
        return 0
    overrides = parse_overrides(args.overrides)
    found = reservations(template, overrides)
    verdict = judge(found, json.loads(args.account_settings.read_text()), args.already_reserved)
    if not verdict.fits:
        print(refusal(found, verdict, overrides), file=sys.stderr)
        return 1
    print(
        f"deploy: preflight ok: the stack reserves {verdict.reserved} concurrent executions "
        f"of the {verdict.available} it may (quota {verdict.limit}, {UNRESERVED_MINIMUM} stay unreserved)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
