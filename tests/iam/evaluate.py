"""Identity-policy evaluation: does a role's policy allow an action on a resource, and by which statement?

Action and Resource matching is moto's policy statement evaluator
(moto.iam.access_control.IAMPolicyStatement, what moto's server uses to
enforce IAM). Its Condition handling is not used: it knows only StringEquals,
counts an operator it does not know as satisfied, and answers an Allow whose
condition fails as a Deny, so an s3:prefix limit or a dynamodb:LeadingKeys
Deny would be judged wrongly. Conditions are evaluated here instead, for the
operators the templates use, and any other operator stops the replay
(UnsupportedCondition) rather than being guessed at.

The decision is IAM's for identity policies: an applicable Deny wins, else an
applicable Allow allows, else the call is implicitly denied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

from tests.iam.template import Statement


class UnsupportedCondition(ValueError):
    pass


class Verdict(Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "not allowed by any statement"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    allowed_by: tuple[Statement, ...] = ()
    denied_by: tuple[Statement, ...] = ()
    # Statements granting the action, but not on this resource or not under these conditions.
    near: tuple[Statement, ...] = ()


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def matches(body: dict, action: str, resource: str) -> bool:
    """Whether a statement's Action/NotAction and Resource cover the action on the resource (moto's matcher).

    IAM compares action names without regard to case, moto does not: both sides are lower-cased.
    """
    if "NotResource" in body or "Principal" in body or "NotPrincipal" in body:
        raise UnsupportedCondition(f"NotResource/Principal in an identity policy statement: {body}")
    core = {"Effect": "Allow", "Resource": body.get("Resource", "*")}
    for key in ("Action", "NotAction"):
        if key in body:
            core[key] = [name.lower() for name in _listed(body[key])]
    return IAMPolicyStatement(core).is_action_permitted(action.lower(), resource) is PermissionResult.PERMITTED


# -- conditions ---------------------------------------------------------------------


def _glob(pattern: str, value: str) -> bool:
    """StringLike/ArnLike: `*` any run of characters, `?` one character, case-sensitive."""
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(expression, value, re.DOTALL) is not None


_MATCHERS = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringEqualsIgnoreCase": lambda expected, actual: expected.lower() == actual.lower(),
    "StringLike": _glob,
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": _glob,
    "Bool": lambda expected, actual: str(expected).lower() == str(actual).lower(),
}


def _operator_holds(operator: str, expected: Any, actual: list[str] | None) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _MATCHERS or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedCondition(f"condition operator {operator!r} is not evaluated by the replay")
    match = _MATCHERS[base]
    wanted = [str(value) for value in _listed(expected)]
    if not actual:
        # A missing key: false, except ...IfExists and ForAllValues (vacuously true over no values).
        return if_exists or qualifier == "ForAllValues"
    if qualifier == "ForAllValues":
        return all(any(match(want, value) for want in wanted) for value in actual)
    return any(match(want, value) for want in wanted for value in actual)


def conditions_hold(condition: dict, context: dict[str, list[str]]) -> bool:
    """Every operator block and every key in it must hold (AND); values within a key are alternatives (OR)."""
    lowered = {key.lower(): values for key, values in context.items()}
    return all(
        _operator_holds(operator, expected, lowered.get(key.lower()))
        for operator, block in condition.items()
        for key, expected in block.items()
    )


# -- decisions ----------------------------------------------------------------------


def applies(statement: Statement, action: str, resource: str, context: dict[str, list[str]]) -> bool:
    body = statement.body
    return matches(body, action, resource) and conditions_hold(body.get("Condition", {}), context)


def decide(statements: Iterable[Statement], action: str, resource: str, context: dict[str, list[str]]) -> Decision:
    statements = list(statements)
    applicable = [s for s in statements if applies(s, action, resource, context)]
    denied = tuple(s for s in applicable if s.body["Effect"] == "Deny")
    allowed = tuple(s for s in applicable if s.body["Effect"] == "Allow")
    if denied:
        return Decision(Verdict.EXPLICIT_DENY, allowed, denied)
    if allowed:
        return Decision(Verdict.ALLOWED, allowed)
    near = tuple(
        s
        for s in statements
        if s.body["Effect"] == "Allow" and matches({**s.body, "Resource": "*"}, action, "*") and s not in applicable
    )
    return Decision(Verdict.IMPLICIT_DENY, near=near)


def grants(statement: Statement) -> list[tuple[str, str]]:
    """The (action, resource) pairs an Allow statement lists, for the report of what went unused."""
    if statement.body["Effect"] != "Allow":
        return []
    return [
        (action, resource)
        for action in _listed(statement.body.get("Action", []))
        for resource in _listed(statement.body.get("Resource", "*"))
    ]


def grant_covers(action_pattern: str, resource_pattern: str, action: str, resource: str) -> bool:
    return matches({"Action": action_pattern, "Resource": resource_pattern}, action, resource)
