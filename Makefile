# Every target works on a fresh clone: `setup` installs what the others need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV = $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export TZ := UTC
export CDK_DISABLE_CLI_TELEMETRY := true
# Bytecode is compiled once and kept out of the source tree (no __pycache__ in the checkout): every Python process
# (pytest's workers, each `intake serve` and CLI the tests start) reads what the first one compiled, where each used
# to compile boto3, moto, pydantic and Intake from source again
export PYTHONPYCACHEPREFIX := $(CURDIR)/.venv/pycache
# ...and written: under a PYTHONDONTWRITEBYTECODE inherited from the shell (some images set it) each process compiled
# again what it imports (a pytest worker's imports: 4.3 CPU-s, 1.1 from bytecode)
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help setup uv browser demo test lint bench synth serve schemas clean

help:
	@echo "make demo    run the sample web forms through a local Intake and print the tickets"
	@echo "make test    run every test (unit, moto, CDK synthesis, end to end, the console in Chromium)"
	@echo "             (DEPTH=deep: the slowest property, backlog and schema tests at full depth)"
	@echo "make lint    ruff and mypy --strict"
	@echo "make bench   import-time and throughput benchmarks, as ratios to a baseline"
	@echo "make synth   synthesize the CDK app (offline)"
	@echo "make serve   run Intake on http://127.0.0.1:8080 (the console: open that URL)"

setup: .venv/.synced node_modules/.installed

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		{ echo "==> uv: installing it"; python3 -m pip install --quiet uv; }

.venv/.synced: pyproject.toml uv.lock
	@$(MAKE) --no-print-directory uv
	@echo "==> uv sync --frozen: the locked Python dependencies into .venv"
	@$(UV) sync --frozen --all-extras
	@touch $@

# The console's browser test drives Debian's Chromium (Playwright's own browser downloads are not used)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			echo "==> apt-get: Debian's chromium, for the console's browser test"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
		else \
			echo "==> chromium is missing and this is not root: the console's browser test will be skipped"; \
		fi; }

node_modules/.installed: package.json package-lock.json
	@echo "==> npm ci: the pinned AWS CDK CLI (2.x)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# demo and serve need only the runtime and the local extra: no Node.js, no CDK, no moto
RUN_LOCAL = $(UV) run --frozen --no-default-groups --extra local

demo: uv
	@echo "==> intake demo: posting the samples to a local Intake (SQLite and files, no AWS)"
	@$(RUN_LOCAL) intake demo

serve: uv
	@$(RUN_LOCAL) intake serve

# Four pytest-xdist workers on two cores: much of the suite waits (moto's Step Functions Waits, `intake serve`
# children, SLA deadlines), and the other workers compute meanwhile. One run after the other: four 321 s, three 338 s
# (before the xdist groups worked again, two 594 s and three 484 s). The SLA tests hold deadlines seconds away, with
# gaps for a busy machine. `make test WORKERS=0` runs it in one process; tests/conftest.py has the rules.
WORKERS ?= 4
# Every test runs at either depth. `make test DEPTH=deep` (CI's nightly job, a release, a change to what they cover)
# runs the costliest as they were before they had an everyday depth: every example of the slow property tests,
# 10,000 old tickets in the digest's backlog test, 25 schemathesis requests per operation (tests/depth.py says which).
DEPTH ?= everyday

test: setup browser
	@echo "==> pytest on $(WORKERS) workers, $(DEPTH) depth (exit code 5, no tests collected, fails this target)"
	@INTAKE_TEST_DEPTH=$(DEPTH) $(UV) run --frozen pytest -n $(WORKERS) --dist loadgroup

lint: setup
	@echo "==> ruff check, ruff format --check, mypy --strict functions/"
	@$(UV) run --frozen ruff check functions tests bench infra
	@$(UV) run --frozen ruff format --check functions tests bench infra
	@$(UV) run --frozen mypy functions/intake

bench: setup
	@echo "==> benchmarks (ratios against baselines measured in the same run)"
	@$(UV) run --frozen python bench/run.py

schemas: setup
	@$(UV) run --frozen intake schemas export

synth: setup
	@echo "==> cdk synth (offline, no notices, no telemetry)"
	@npx cdk synth --no-notices --quiet

clean:
	rm -rf .venv node_modules cdk.out .intake .pytest_cache .mypy_cache .ruff_cache
