"""Lambda assets built on this machine, without Docker.

- The dependencies layer: `pyproject.toml`'s `[project].dependencies`, pinned to `uv.lock`, with what
  they need on the Lambda runtime and without what it provides (boto3 and its own dependencies),
  installed by `pip install --platform ... --only-binary=:all:` and trimmed.
- The code: `functions/` as it is, plus the policy file the functions read at cold start.

Both carry a hash of their inputs, so CDK re-bundles only when an input changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, FileSystem, ILocalBundling

from infra import lambda_platform

# Never in an asset: caches, bytecode and test suites.
CODE_EXCLUDES = ("__pycache__", "*.pyc", "tests", ".pytest_cache", ".mypy_cache")
# Where the policy file lands in the code asset (read through INTAKE_CONFIG).
POLICY_IN_ASSET = "intake.yaml"
# Bump when the way the layer is built changes (so the hash, and the cached bundle, change too).
_LAYER_RECIPE = 1
# The image Docker would use if local bundling ever declined; it never does (see `try_bundle`).
_DOCKER_FALLBACK = DockerImage.from_registry(f"public.ecr.aws/sam/build-python{lambda_platform.PYTHON_VERSION}")


class LayerBuildError(Exception):
    """pip could not build the dependencies layer (no pip, no network, no wheel for the platform)."""


# ------------------------------------------------------------------ what goes in the layer


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(
    pyproject: Path,
    lock: Path,
    *,
    extra: str | None = None,
    environment: Mapping[str, str] = lambda_platform.MARKER_ENVIRONMENT,
    provided: Iterable[str] = lambda_platform.PROVIDED_BY_RUNTIME,
) -> list[str]:
    """`name==version` for every package the functions import on the Lambda runtime.

    The roots are `[project].dependencies`; versions and transitive dependencies come from `uv.lock`,
    so the layer holds exactly what the tests ran against. Markers are evaluated for the runtime
    (Python 3.13 on Linux arm64), not for the machine that synthesizes. With `extra`, the roots are that
    optional dependency group's instead, less what the dependencies' layer holds already (a layer beside it).
    """
    from packaging.markers import Marker
    from packaging.requirements import Requirement

    env = {**environment, "extra": ""}
    skipped = {_canonical(name) for name in provided}
    if extra is not None:
        base = runtime_requirements(pyproject, lock, environment=environment, provided=provided)
        skipped |= {line.partition("==")[0] for line in base}
    locked: dict[str, list[dict[str, Any]]] = {}
    for package in tomllib.loads(lock.read_text(encoding="utf-8"))["package"]:
        locked.setdefault(package["name"], []).append(package)

    def entry(name: str, version: str | None) -> dict[str, Any]:
        candidates = [p for p in locked.get(name, []) if version is None or p["version"] == version]
        if len(candidates) != 1:
            raise LayerBuildError(f"uv.lock has {len(candidates)} entries for {name} {version or ''}; run `uv lock`")
        return candidates[0]

    pending: list[tuple[str, str | None, Sequence[str]]] = []
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    roots = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    for line in roots:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(env):
            pending.append((_canonical(requirement.name), None, sorted(requirement.extras)))

    pinned: dict[str, str] = {}
    walked: set[tuple[str, str]] = set()
    while pending:
        name, version, extras = pending.pop()
        if name in skipped:
            continue
        package = entry(name, version)
        pinned[name] = package["version"]
        groups = {"": package.get("dependencies", [])}
        groups |= {extra: package.get("optional-dependencies", {}).get(extra, []) for extra in extras}
        for group, edges in groups.items():
            if (name, group) in walked:
                continue
            walked.add((name, group))
            for edge in edges:
                if "marker" not in edge or Marker(edge["marker"]).evaluate(env):
                    pending.append((edge["name"], edge.get("version"), edge.get("extra", [])))
    return [f"{name}=={version}" for name, version in sorted(pinned.items())]


def layer_hash(requirements: Sequence[str]) -> str:
    """Changes exactly when the layer's content would: its pins, its platform, its recipe."""
    recipe = {
        "requirements": list(requirements),
        "platform": lambda_platform.PIP_PLATFORM,
        "python": lambda_platform.PYTHON_VERSION,
        "recipe": _LAYER_RECIPE,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def code_hash(functions_dir: Path, policy_file: Path) -> str:
    """The functions' sources and the policy file: editing either one redeploys the code."""
    policy_digest = hashlib.sha256(policy_file.read_bytes()).hexdigest()
    return FileSystem.fingerprint(str(functions_dir), exclude=list(CODE_EXCLUDES), extra_hash=policy_digest)


# ------------------------------------------------------------------ how it is built


def _pip() -> list[str]:
    """pip of the interpreter running the app if it has one (a uv venv has none), else the system's."""
    if find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for candidate in ("pip3", "pip"):
        found = shutil.which(candidate)
        if found:
            return [found]
    for python in ("python3", "python"):
        found = shutil.which(python)
        if found and subprocess.run([found, "-m", "pip", "--version"], capture_output=True).returncode == 0:  # noqa: S603
            return [found, "-m", "pip"]
    raise LayerBuildError("pip is needed to build the dependencies layer: install it (python3 -m ensurepip)")


def trim(site: Path) -> None:
    """Drop what never runs on Lambda: bytecode caches, test suites, console scripts, install records.

    Each `*.dist-info` keeps only METADATA (`importlib.metadata.version()` reads it at import time,
    python-ulid does) and the license texts.
    """
    for path in sorted(site.rglob("*"), reverse=True):  # children before their parents
        if not path.exists():
            continue
        if path.is_dir() and path.name in {"__pycache__", "tests"}:
            shutil.rmtree(path)
        elif path.is_file() and path.suffix == ".pyc":
            path.unlink()
    shutil.rmtree(site / "bin", ignore_errors=True)
    for info in site.glob("*.dist-info"):
        for item in info.iterdir():
            if item.name in {"METADATA", "licenses"} or item.name.startswith(("LICENSE", "COPYING", "NOTICE")):
                continue
            if item.is_dir():
                shutil.rmtree(item)
            else:
                item.unlink()


@jsii.implements(ILocalBundling)
class LayerBundling:
    """`pip install` the pinned requirements as wheels for the Lambda platform into `<asset>/python`."""

    def __init__(self, requirements: Sequence[str]) -> None:
        self.requirements = list(requirements)

    def command(self, target: Path) -> list[str]:
        return [
            *_pip(),
            "install",
            "--quiet",
            "--no-deps",  # the pins already are the whole closure (see runtime_requirements)
            "--no-compile",
            "--only-binary=:all:",
            "--platform",
            lambda_platform.PIP_PLATFORM,
            "--python-version",
            lambda_platform.PYTHON_VERSION,
            "--implementation",
            lambda_platform.PIP_IMPLEMENTATION,
            "--target",
            str(target),
            *self.requirements,
        ]

    def try_bundle(self, output_dir: str, *, image: DockerImage, **options: Any) -> bool:
        site = Path(output_dir) / "python"
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_ROOT_USER_ACTION": "ignore"}
        result = subprocess.run(self.command(site), capture_output=True, text=True, env=env)  # noqa: S603 (our own argv)
        if result.returncode != 0:
            raise LayerBuildError(f"pip install failed ({result.returncode}):\n{result.stderr.strip()}")
        trim(site)
        return True  # never fall back to Docker: it is not needed, and often not there


@jsii.implements(ILocalBundling)
class CodeBundling:
    """Copy the functions' sources (without caches and tests) and put the policy file beside them."""

    def __init__(self, functions_dir: Path, policy_file: Path) -> None:
        self.functions_dir = functions_dir
        self.policy_file = policy_file

    def try_bundle(self, output_dir: str, *, image: DockerImage, **options: Any) -> bool:
        shutil.copytree(
            self.functions_dir, output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*CODE_EXCLUDES)
        )
        shutil.copyfile(self.policy_file, Path(output_dir) / POLICY_IN_ASSET)
        return True


def layer_bundling(requirements: Sequence[str]) -> BundlingOptions:
    return BundlingOptions(image=_DOCKER_FALLBACK, local=LayerBundling(requirements))


def code_bundling(functions_dir: Path, policy_file: Path) -> BundlingOptions:
    return BundlingOptions(image=_DOCKER_FALLBACK, local=CodeBundling(functions_dir, policy_file))
