"""Each Lambda function's role as the stack synthesizes it, for the moto tests to hold the function's calls to.

`synthesized_roles()` gives, for every function whose handler is Intake's, its handler and the statements of every
policy attached to its role, as in the template; `FunctionRole.statements` resolves their `Ref`, `Fn::GetAtt` and
`Fn::Join` to the ARNs of the resources that stand for them (moto's, `tests.iam_calls.moto_stand_ins`).

Synthesis takes 15 s or more, so it runs once, in a process of its own (no `aws_cdk` in the tests' process), and
its result is kept in the system's temporary folder under a hash of what synthesis reads: `infra/`, `cdk.json`,
`intake.yaml`, the tests' synthesis context and aws-cdk-lib's version, plus the `intake` modules the synthesis
imported (recorded with their hashes, checked on every read). Parallel sessions (pytest-xdist workers, other
checkouts) take a file lock around it: one synthesizes, the others read its result.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.iam_policy import Statement, UnsupportedPolicyError
from tests.infra.synthesis import STACK

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(tempfile.gettempdir()) / "intake-synthesized-roles"
# What synthesis reads besides the `intake` modules it imports (those are recorded as it runs)
_INPUTS = ("infra/**/*.py", "cdk.json", "intake.yaml", "tests/infra/synthesis.py", "tests/iam_roles.py")
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",  # moto's account
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": STACK,
}


@dataclass(frozen=True)
class FunctionRole:
    """A function (its construct id, e.g. `Receiver`), the handler Lambda runs, its role's policy statements."""

    name: str
    handler: str
    documents: tuple[Mapping[str, Any], ...]  # the statements as the template has them

    def statements(self, arn_of: Callable[[str], str], referenced: Mapping[str, Mapping[str, str]]) -> list[Statement]:
        """The statements with every reference resolved: `arn_of(construct path)` is the ARN of what stands for the
        resource built there (`referenced`: logical id → its type and construct path)."""
        return [Statement.of(_resolve(document, arn_of, referenced)) for document in self.documents]


@dataclass(frozen=True)
class Roles:
    functions: dict[str, FunctionRole]  # by handler (`intake.handlers.receiver.handler`)
    referenced: dict[str, dict[str, str]]  # logical id → {"type", "path"} of each resource a statement names

    def without(self, function: str, drop: Callable[[Mapping[str, Any]], bool]) -> Roles:
        """These roles, `function`'s without the statements `drop` picks (what a missing grant would be)."""
        changed = {
            handler: FunctionRole(role.name, role.handler, tuple(d for d in role.documents if not drop(d)))
            if role.name == function
            else role
            for handler, role in self.functions.items()
        }
        return Roles(changed, self.referenced)


# ---------------------------------------------------------------------- from the template


def roles_of(template: Mapping[str, Any]) -> dict[str, Any]:
    """Every Intake function's role in `template`, as JSON: {"functions": [...], "referenced": {...}}."""
    resources = template["Resources"]
    functions = []
    for function in resources.values():
        properties = function["Properties"] if function["Type"] == "AWS::Lambda::Function" else {}
        if not str(properties.get("Handler", "")).startswith("intake."):
            continue  # CDK's own (bucket notifications) and non-functions
        role = properties["Role"]["Fn::GetAtt"][0]
        if resources[role]["Properties"].get("ManagedPolicyArns"):
            raise UnsupportedPolicyError(f"{role} has managed policies: their statements are not in the template")
        documents = [
            s for p in resources[role]["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]
        ]
        for policy in resources.values():
            if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role} in policy["Properties"].get("Roles", []):
                documents += policy["Properties"]["PolicyDocument"]["Statement"]
        functions.append(
            {"name": _path(function).split("/")[-1], "handler": properties["Handler"], "documents": documents}
        )
    referenced = {
        logical_id: {"type": resources[logical_id]["Type"], "path": _path(resources[logical_id])}
        for logical_id in sorted({r for f in functions for r in _references(f["documents"])})
    }
    return {"functions": functions, "referenced": referenced}


def _path(resource: Mapping[str, Any]) -> str:
    """The construct path under the stack: `Functions/Receiver`."""
    path = str(resource["Metadata"]["aws:cdk:path"])
    return path.removeprefix(f"{STACK}/").removesuffix("/Resource")


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if "Ref" in value and value["Ref"] not in PSEUDO:
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            yield value["Fn::GetAtt"][0]
        for inner in value.values():
            yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


# Ref gives these types' ARN; other types' Ref is their name (a table, a bucket, a configuration set, a function)
_REF_IS_ARN = {"AWS::StepFunctions::StateMachine", "AWS::SecretsManager::Secret", "AWS::SNS::Topic"}


def _resolve(value: Any, arn_of: Callable[[str], str], referenced: Mapping[str, Mapping[str, str]]) -> Any:
    if isinstance(value, list):
        return [_resolve(v, arn_of, referenced) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value and len(value) == 1:
        if value["Ref"] in PSEUDO:
            return PSEUDO[value["Ref"]]
        target = referenced[value["Ref"]]
        arn = arn_of(target["path"])
        return arn if target["type"] in _REF_IS_ARN else _name(arn)
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        arn = arn_of(referenced[logical_id]["path"])
        if attribute in ("Arn", "Name"):
            return arn if attribute == "Arn" else _name(arn)
        raise UnsupportedPolicyError(f"Fn::GetAtt {logical_id}.{attribute}")
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve(parts, arn_of, referenced))
    if any(key.startswith("Fn::") for key in value):
        raise UnsupportedPolicyError(f"intrinsic function {sorted(value)}")
    return {k: _resolve(v, arn_of, referenced) for k, v in value.items()}


def _name(arn: str) -> str:
    """`arn:aws:dynamodb:...:table/intake-test-tickets` → `intake-test-tickets` (a bucket's: after `:::`)."""
    return re.split(r"[:/]", arn)[-1]


# ---------------------------------------------------------------------- synthesized once


@cache
def synthesized_roles() -> Roles:
    """The roles of the stack as `tests/infra` synthesizes it (its context and policy file, the console routed), from
    the cache when what synthesis reads is unchanged."""
    key = _digest(p for pattern in _INPUTS for p in sorted(ROOT.glob(pattern)))
    key = hashlib.sha256(f"{key} aws-cdk-lib {metadata.version('aws-cdk-lib')}".encode()).hexdigest()[:24]
    CACHE.mkdir(exist_ok=True)
    kept = CACHE / f"{key}.json"
    with _locked(CACHE / f"{key}.lock"):
        found = json.loads(kept.read_text()) if kept.exists() else None
        if found is None or any(_digest([ROOT / p]) != h for p, h in found["imported"].items()):
            found = _synthesize()
            partial = kept.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(found))
            partial.replace(kept)
    functions = {f["handler"]: FunctionRole(f["name"], f["handler"], tuple(f["documents"])) for f in found["functions"]}
    return Roles(functions, found["referenced"])


def _digest(paths: Any) -> str:
    hashing = hashlib.sha256()
    for path in paths:
        hashing.update(str(path.relative_to(ROOT)).encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
    return hashing.hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _synthesize() -> dict[str, Any]:
    """`python -m tests.iam_roles` in a process of its own, with this one's import path."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "roles.json"
        subprocess.run([sys.executable, "-m", "tests.iam_roles", str(out)], cwd=ROOT, env=environment, check=True)
        found: dict[str, Any] = json.loads(out.read_text())
    return found


def main(out: str) -> None:
    from dataclasses import replace

    from infra.app import build_app
    from infra.policy_file import load_policy_file
    from intake.config import ConsoleSignIn, Jwt
    from tests.infra.synthesis import cdk_context, tested_policy

    # the infra tests' policy file (surveys, digests, a second team), with the console served as tests/aws serve it
    # (api.jwt.console: the api function signs people in and reads customers' files)
    tested = tested_policy(load_policy_file(ROOT / "intake.yaml"))
    console = ConsoleSignIn(client_id="intake-console")
    jwt = Jwt(issuer="https://auth.example.com/", audience=["intake-agents"], console=console)
    api = tested.policy.api.model_copy(update={"jwt": jwt})
    policy_file = replace(tested, policy=tested.policy.model_copy(update={"api": api}))
    with tempfile.TemporaryDirectory() as outdir:
        app = build_app(cdk_context(), outdir=outdir, policy_file=policy_file)
        template = app.synth().get_stack_by_name(STACK).template
    imported = {
        str(Path(m.__file__).resolve().relative_to(ROOT))
        for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and Path(m.__file__).resolve().is_relative_to(ROOT / "functions")
    }
    roles = roles_of(template)
    roles["imported"] = {p: _digest([ROOT / p]) for p in sorted(imported)}
    Path(out).write_text(json.dumps(roles))


if __name__ == "__main__":
    main(sys.argv[1])
