# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := $(CURDIR)/.tools/bin
export PATH := $(TOOLS):$(PATH)

.PHONY: help venv tools checks demo test test-slow lint typecheck unit crd bench clean

help:
	@echo "make demo       run the sandbox and sync its institutions"
	@echo "make test       lint, type-check, chart/image checks and the whole test suite"
	@echo "make test-slow  the long crash and fault trials"
	@echo "make crd        regenerate crds/ and the chart's CRD template from the spec model"
	@echo "make bench      the benchmark against the sandbox"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# Each scripts/tools/*.sh installs one outside tool (Debian package or registry download) into
# .tools/bin or the system, and does nothing when it is already there.
tools: venv
	@mkdir -p $(TOOLS)
	@set -e; for script in scripts/tools/*.sh; do [ -e "$$script" ] || continue; bash "$$script" "$(TOOLS)" "$(CURDIR)/$(BIN)"; done

demo: venv
	$(BIN)/python -m examsync.sandbox.demo

lint: venv
	$(BIN)/ruff check operator tests bench

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

clean:
	rm -rf $(VENV) .tools .mypy_cache .ruff_cache
