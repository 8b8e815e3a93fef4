# kd_nb: every target sets itself up from nothing (a .venv with kd_nb editable + dev extras + a `kd_nb` kernel).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kd_nb-installed
KERNEL := kd_nb

.PHONY: setup test test-slow check-sync readme demo lab docs clean-venv

setup: $(STAMP)

# Re-install only when the packaging files change; the stamp makes repeated runs cheap.
$(STAMP): settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name 'Python (kd_nb)' >/dev/null
	@touch $(STAMP)

test: setup
	@start=$$(date +%s); \
	$(BIN)/nbdev_test; \
	$(MAKE) --no-print-directory check-sync; \
	echo "make test: passed in $$(( $$(date +%s) - start )) s"

test-slow: setup
	$(BIN)/nbdev_test --flags slow

# Exporting and cleaning must be no-ops: the library matches the notebooks and the notebooks are clean.
# The docs pre-processing (what Quarto would render) must run clean, and README.md must match nbs/index.ipynb.
check-sync: setup
	@state() { git status --porcelain --untracked-files=all; git diff; }; \
	fail() { git status --short >&2; echo "$$1" >&2; exit 1; }; \
	before=$$(state); \
	$(BIN)/nbdev_export; \
	[ "$$(state)" == "$$before" ] || fail "kd_nb/ is out of sync with nbs/: run nbdev_export and commit the notebooks with the exported code."; \
	$(BIN)/nbdev_clean; \
	[ "$$(state)" == "$$before" ] || fail "Notebooks are not clean: run nbdev_clean and commit the result."; \
	$(BIN)/python .ci/docs.py readme >/dev/null || fail "Docs pre-processing (nbdev_proc_nbs) failed."; \
	[ "$$(state)" == "$$before" ] || fail "README.md is out of date: run 'make readme' and commit it."; \
	echo "check-sync: library and notebooks in sync, notebooks clean, docs pre-processing ok, README current"

# README.md is rendered from nbs/index.ipynb (nbdev_readme needs Quarto; .ci/docs.py does its job without it).
readme: setup
	$(BIN)/python .ci/docs.py readme

# The demo prepares CIFAR-10 from SOURCE when given, else from ../shared/data's copy when there is one, else downloads it.
SOURCE ?= $(wildcard ../shared/data/cifar-10-batches-py)

demo: setup
	$(BIN)/kd_pipeline --arch cnn --dataset cifar10 --preset quick --baselines $(if $(SOURCE),--source $(SOURCE))

lab: setup
	$(BIN)/jupyter lab --notebook-dir=.

docs: setup
	@command -v quarto >/dev/null || { echo "make docs needs Quarto (https://quarto.org/docs/get-started/); it is not on PATH." >&2; exit 1; }
	$(BIN)/nbdev_docs

clean-venv:
	rm -rf $(VENV)
