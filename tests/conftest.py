"""What every test shares: how the suite runs in parallel.

`make test` runs pytest-xdist (`-n 4 --dist loadgroup`, the Makefile's WORKERS): four worker processes on two
cores, since much of the suite waits (moto's Step Functions Waits, `intake serve` children, SLA deadlines) rather than
computes. `-n 0` or `-p no:xdist` runs everything in one process, for debugging. So a test must not depend on
which other tests run beside it:

- ports: bind port 0 (`intake serve --port 0`, a socket bound to ("127.0.0.1", 0)) and read back the one given;
  never a fixed port;
- files: `tmp_path` / `tmp_path_factory` (unique per worker and test); never write into the repository or a fixed
  path under /tmp;
- moto: inside `tests.moto_stack.emulated()`, per test or per module; it is in-process, so workers never share
  it;
- session- and module-scoped fixtures run once per worker that needs them. An expensive one that should run once
  per session belongs to an xdist group, so that one worker runs all its tests: `pytest_collection_modifyitems`
  below puts tests/infra (one CDK synthesis) in one group and each module with a module-scoped fixture of its own
  (its own `intake serve` and posts, ten fresh interpreters) in a group of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.depth import DEPTH

TESTS = Path(__file__).resolve().parent


def pytest_report_header(config: pytest.Config) -> str:
    return f"depth: {DEPTH} (INTAKE_TEST_DEPTH: everyday or deep, tests/depth.py)"


def pytest_configure(config: pytest.Config) -> None:
    # xdist registers its marker; `-p no:xdist` (one process) runs the same tests, marked the same
    config.addinivalue_line("markers", "xdist_group(name): the tests one worker runs (pytest-xdist --dist loadgroup)")


def _group(item: pytest.Item) -> str | None:
    """The xdist group of a test: None for most, which any worker may take."""
    parts = Path(str(item.path)).resolve().relative_to(TESTS).parts
    if parts[0] == "infra":
        return "infra"  # the session's CDK synthesis (import aws_cdk, jsii, synth) once, on one worker
    module = item.nodeid.split("::")[0]
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info is not None else []
    if any(d and d[-1].scope == "module" and d[-1].baseid == module for d in definitions):
        return module  # its module's fixture made once
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks (--dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups = {item: _group(item) for item in items}
    for item, group in groups.items():
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    # The groups first: each is one long unit (the infra group ~80 s) that xdist hands out in collection order, and
    # one started last would run alone at the end while the other workers idle
    items.sort(key=lambda item: groups[item] is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """A pytest-xdist worker whose groups were lost stops the run: with pytest 9.2, xdist 3.8 renamed node ids that
    pytest no longer reads, and every worker synthesized the app and started each e2e module's server, silently."""
    if getattr(session.config.option, "loadgroup", False):  # set in the workers of `--dist loadgroup`
        lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
        if lost:  # said on stderr too: the controller reports a worker's collection error as its own assertion
            message = f"pytest-xdist did not group {len(lost)} tests (the first: {lost[0]}): see tests/conftest.py"
            print(message, file=sys.stderr)
            raise pytest.UsageError(message)
