"""The one real bundling: pip builds the dependencies layers for arm64; the code asset carries the policy."""

from __future__ import annotations

from pathlib import Path

from tests.infra.synthesis import ROOT

LAYER_LIMIT_MB = 25


def _size_mb(directory: Path) -> float:
    """Unzipped, in MB of 10^6 bytes (the stricter reading of the 25 MB target)."""
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 1e6


def test_the_layer_and_code_assets_build_without_docker(tmp_path: Path) -> None:
    from aws_cdk import App, Stack

    from infra.constructs.functions import dependencies_layer, function_code
    from infra.stage import stage_named

    app = App(outdir=str(tmp_path))  # bundling-stacks defaults to all: this bundles for real
    stack = Stack(app, "Assets")
    dependencies_layer(stack, "Dependencies", project_root=ROOT, stage=stage_named("dev"))
    dependencies_layer(stack, "ConsoleDependencies", project_root=ROOT, stage=stage_named("dev"), extra="console")
    function_code(ROOT / "functions", ROOT / "intake.yaml").bind(stack)
    staged = list(tmp_path.glob("asset.*"))
    (console,) = [path for path in staged if (path / "python" / "jwt").is_dir()]
    (layer,) = [path for path in staged if (path / "python").is_dir() and path != console]
    (code,) = [path for path in staged if (path / "intake").is_dir()]
    site = layer / "python"

    assert list(site.glob("pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so"))
    assert list(site.glob("yaml/_yaml.cpython-313-aarch64-linux-gnu.so"))
    assert not list(site.glob("boto*")) and not list(site.glob("botocore*")) and not list(site.glob("jmespath*"))
    assert not list(site.rglob("__pycache__")) and not list(site.rglob("*.pyc")) and not (site / "bin").exists()
    for info in site.glob("*.dist-info"):
        kept = {p.name for p in info.iterdir()} - {"METADATA", "licenses"}
        assert all(name.upper().startswith(("LICENSE", "COPYING", "NOTICE")) for name in kept), info.name
    assert list(site.glob("python_ulid-*.dist-info/METADATA")), "python-ulid reads its version from it at import"
    # the Tracer's X-Ray SDK (aws-lambda-powertools[tracer]), and wrapt's compiled module for arm64
    assert (site / "aws_xray_sdk" / "core" / "__init__.py").exists()
    assert list(site.glob("wrapt/_wrappers.cpython-313-aarch64-linux-gnu.so"))
    size = _size_mb(layer)
    print(f"\nlayer unzipped: {size:.1f} MB")
    assert size <= LAYER_LIMIT_MB
    # the console's sign-in (api.jwt.console): PyJWT and cryptography for arm64, in the api function's layer alone
    assert not list(site.glob("jwt")) and not list(site.glob("cryptography"))
    signing = console / "python"
    assert list(signing.glob("cryptography/hazmat/bindings/_rust.abi3.so"))
    assert (signing / "jwt" / "__init__.py").exists()
    assert not list(signing.glob("pydantic*")) and not list(signing.glob("boto*"))
    print(f"console layer unzipped: {_size_mb(console):.1f} MB")

    assert (code / "intake.yaml").read_bytes() == (ROOT / "intake.yaml").read_bytes()
    assert (code / "intake" / "handlers" / "receiver.py").exists()
    assert not list(code.rglob("__pycache__")) and not list(code.rglob("tests"))
