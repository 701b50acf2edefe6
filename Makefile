# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := $(CURDIR)/.tools/bin
export PATH := $(TOOLS):$(PATH)

.PHONY: help venv tools checks demo test test-slow lint typecheck unit crd bench lock clean

help:
	@echo "make demo       run the sandbox and sync its institutions"
	@echo "make test       lint, type-check, chart/image checks and the whole test suite"
	@echo "make test-slow  the long crash and fault trials"
	@echo "make crd        regenerate crds/ and the chart's CRD template from the spec model"
	@echo "make bench      the benchmark against the sandbox"
	@echo "make lock       refresh the hashed lock files in requirements/ from pyproject.toml (UPGRADE=1: newest versions)"

# Every Python package comes from the hashed lock files (requirements/*.txt, written by `make lock`):
# pip refuses any file whose sha256 differs. The project itself and its sandbox (sandbox/, a
# distribution of its own that the product's wheel and image never hold) go in without their
# dependencies and without build isolation, so their build tools are the locked ones too.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml sandbox/pyproject.toml requirements/build.txt requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements/build.txt
	$(BIN)/pip install -q --require-hashes -r requirements/dev.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip install -q --no-deps --no-build-isolation -e sandbox
	touch $@

venv: $(VENV)/.installed

# Each scripts/tools/*.sh installs one outside tool (Debian package or registry download) into
# .tools/bin or the system, and does nothing when it is already there.
tools: venv
	@mkdir -p $(TOOLS)
	@set -e; for script in scripts/tools/*.sh; do [ -e "$$script" ] || continue; bash "$$script" "$(TOOLS)" "$(CURDIR)/$(BIN)"; done

demo: venv
	$(BIN)/examsync-sandbox demo

# Every Python tree: ruff's rules, and ruff's formatter (its output, not a second opinion).
PY_TREES := operator sandbox tests bench scripts
lint: venv
	$(BIN)/ruff check $(PY_TREES)
	$(BIN)/ruff format --check $(PY_TREES)

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q

# Each scripts/checks/*.sh is one check with real tools (chart, image); it exits non-zero on failure.
checks: tools
	@set -e; for script in scripts/checks/*.sh; do [ -e "$$script" ] || continue; echo "== $$script"; bash "$$script"; done

test: tools lint typecheck checks
	$(BIN)/pytest -q

test-slow: tools
	$(BIN)/pytest -q -m slow

crd: venv
	$(BIN)/examsync crd --output crds/institutions.examsync.io.yaml \
	  --chart-template charts/examsync/templates/crds/institutions.examsync.io.yaml

bench: venv
	$(BIN)/python bench/run.py

# The lock files: dev (tests, checks, this Makefile), runtime (the image; the same versions) and
# build (pip, setuptools, wheel). Existing pins are kept unless UPGRADE=1; a test fails when a lock
# no longer satisfies pyproject.toml.
UV_COMPILE = UV_NO_CONFIG=1 $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock: venv
	$(UV_COMPILE) pyproject.toml --extra dev -o requirements/dev.txt
	$(UV_COMPILE) pyproject.toml -c requirements/dev.txt -o requirements/runtime.txt
	$(UV_COMPILE) requirements/build.in -o requirements/build.txt

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache
