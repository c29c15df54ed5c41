"""IAM's decision on one request, for the statements of a role's identity policies (the subset the stack uses).

What the moto tests hold each function's AWS calls to (`tests.iam_calls`): moto 5 does not evaluate identity policies
beyond the action (its `access_control` ignores Resource and Condition), and no package on PyPI evaluates a request
against policy statements with condition keys (policy_sentry and iam-floyd write policies, parliament and
cloudsplaining lint them, iam-ape expands an account's permissions without a request). This follows IAM's policy
evaluation logic for one identity policy set: an explicit Deny wins, then any Allow, else the request is implicitly
denied.

Supported, and refused loudly otherwise (`UnsupportedPolicyError`): Action and Resource (`*` and `?` wildcards, actions
case-insensitive), Effect, and Condition with the String operators (`StringEquals`, `StringNotEquals`, `StringLike`,
`StringNotLike`, `StringEqualsIgnoreCase`), each optionally `...IfExists` and prefixed `ForAllValues:` or
`ForAnyValue:`, plus `Bool` and `Null`. Condition keys are matched case-insensitively; a request's context gives each
key a list of values (one for a single-valued key).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

Context = Mapping[str, Sequence[str]]


class UnsupportedPolicyError(ValueError):
    """A statement uses an element or condition operator this evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    """What IAM authorizes: one action on one resource, with the request's condition keys. A request that SES
    authorizes against either of two identities (an address and its domain) names both in `alternatives`."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    alternatives: tuple[str, ...] = ()

    def __str__(self) -> str:
        keys = ", ".join(f"{k}={list(v)}" for k, v in sorted(self.context.items()) if v)
        resource = " or ".join((self.resource, *self.alternatives))
        return f"{self.action} on {resource}" + (f" ({keys})" if keys else "")


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]]

    @staticmethod
    def of(document: Mapping[str, Any]) -> Statement:
        """A statement as IAM reads it: Action and Resource as one string or a list, Condition optional."""
        unsupported = set(document) - {"Sid", "Effect", "Action", "Resource", "Condition"}
        if unsupported:
            raise UnsupportedPolicyError(f"statement elements {sorted(unsupported)}: {document}")
        return Statement(
            effect=document["Effect"],
            actions=tuple(_as_list(document["Action"])),
            resources=tuple(_as_list(document["Resource"])),
            condition=document.get("Condition", {}),
        )

    def applies_to(self, request: Request) -> bool:
        """Whether the statement matches the request: its action, one of its resources, and its whole condition."""
        if not any(_matches(pattern, request.action, ignore_case=True) for pattern in self.actions):
            return False
        if not any(_matches(p, r) for p in self.resources for r in (request.resource, *request.alternatives)):
            return False
        return all(
            _condition(operator, key, _as_list(values), request.context)
            for operator, keys in self.condition.items()
            for key, values in keys.items()
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "allowed", "explicitly denied" or "no statement allows it"


def decide(statements: Iterable[Statement], request: Request) -> Decision:
    applying = [s for s in statements if s.applies_to(request)]
    if any(s.effect == "Deny" for s in applying):
        return Decision(False, "explicitly denied")
    if any(s.effect == "Allow" for s in applying):
        return Decision(True, "allowed")
    return Decision(False, "no statement allows it")


# ---------------------------------------------------------------------- matching


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters (`/` and `:` included), `?` any one character."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


_STRING_TESTS = {
    "StringEquals": lambda expected, value: value == expected,
    "StringLike": lambda expected, value: _matches(expected, value),
    "StringEqualsIgnoreCase": lambda expected, value: value.lower() == expected.lower(),
    "Bool": lambda expected, value: value.lower() == str(expected).lower(),
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike"}


def _condition(operator: str, key: str, expected: list[Any], context: Context) -> bool:
    """One condition key of one operator: IAM's rules for single- and multi-valued keys, IfExists and Null."""
    values = next((list(v) for k, v in context.items() if k.lower() == key.lower()), None)
    if operator == "Null":
        return (not values) == (str(expected[0]).lower() == "true")
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    negated = name in _NEGATED
    test = _STRING_TESTS.get(_NEGATED.get(name, name))
    if test is None or qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise UnsupportedPolicyError(f"condition operator {operator}")

    def one(value: str) -> bool:
        matched = any(test(str(e), value) for e in expected)
        return not matched if negated else matched

    if qualifier == "ForAllValues":  # every value the request has is one of those allowed; none: true
        return all(one(v) for v in values or [])
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values or [])
    if not values:  # absent: no match, which a negated operator and IfExists take as true
        return if_exists or negated
    return any(one(v) for v in values)
