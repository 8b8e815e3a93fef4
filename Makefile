# kd_nb: every target sets itself up from nothing (a .venv with kd_nb editable + dev extras + a `kd_nb` kernel).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kd_nb-installed
KERNEL := kd_nb

.PHONY: setup test test-slow test-timm-floor check-sync readme outputs demo demo-vit lab browser-check docs gpu-prepare gpu-check clean-venv

setup: $(STAMP)

# Re-install only when the packaging files change; the stamp makes repeated runs cheap.
$(STAMP): settings.ini setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name 'Python (kd_nb)' >/dev/null
	@touch $(STAMP)

# Two notebooks at a time, every process on one thread. torch gives each process every core, so two notebooks side
# by side fought over them (456 s, against 268 s in turn, when the suite was smaller); on one thread each they share
# the cores instead; and much of a test's time is spent starting processes on one core (a tiny stage through papermill
# took 13 s, about 4 of them starting the kernel and 4.6 importing kd_nb). On a 2-core AMD EPYC (2026-12-07): the
# notebooks took 433 s this way, 680 s one at a time on two threads.
NBDEV_TEST := OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2

test: setup
	@start=$$(date +%s); \
	$(NBDEV_TEST); \
	$(MAKE) --no-print-directory test-timm-floor; \
	$(MAKE) --no-print-directory check-sync; \
	echo "make test: passed in $$(( $$(date +%s) - start )) s"

# The models notebook once more against the lowest timm settings.ini allows (pure Python: a side folder).
TIMM_FLOOR := $(shell sed -n 's/^requirements = .*timm>=\([0-9.]*\).*/\1/p' settings.ini)
FLOOR_DIR := $(VENV)/timm-$(TIMM_FLOOR)

$(FLOOR_DIR):
	$(BIN)/python -m pip install --quiet --no-deps --target $@.partial timm==$(TIMM_FLOOR)
	mv $@.partial $@

# `make test` runs the models notebook there (every timm call kd_nb makes goes through it); `make test-slow` the
# experiment notebook too, which took 51 of the suite's seconds for what the models notebook mostly covers.
FLOOR_NBS ?= ^02_
test-timm-floor: setup $(FLOOR_DIR)
	@PYTHONPATH=$(FLOOR_DIR) $(BIN)/python -c "import timm; assert timm.__version__ == '$(TIMM_FLOOR)', timm.__version__"
	PYTHONPATH=$(FLOOR_DIR) $(NBDEV_TEST) --file_re '$(FLOOR_NBS)'
	@echo "test-timm-floor: the notebooks matching $(FLOOR_NBS) pass on timm $(TIMM_FLOOR)"

test-slow: setup
	$(NBDEV_TEST) --flags slow
	$(MAKE) --no-print-directory test-timm-floor FLOOR_NBS='^0[27]_'

# Exporting and cleaning must be no-ops: the library matches the notebooks and the notebooks are clean.
# The library notebooks keep their examples' outputs (every show_doc cell shows its documentation).
# The docs pre-processing (what Quarto would render) must run clean, and README.md must match nbs/index.ipynb.
check-sync: setup
	@state() { git status --porcelain --untracked-files=all; git diff; }; \
	fail() { git status --short >&2; echo "$$1" >&2; exit 1; }; \
	before=$$(state); \
	$(BIN)/nbdev_export; \
	[ "$$(state)" == "$$before" ] || fail "kd_nb/ is out of sync with nbs/: run nbdev_export and commit the notebooks with the exported code."; \
	$(BIN)/nbdev_clean; \
	[ "$$(state)" == "$$before" ] || fail "Notebooks are not clean: run nbdev_clean and commit the result."; \
	$(BIN)/python .ci/docs.py check-outputs; \
	$(BIN)/python .ci/docs.py check-ids; \
	$(BIN)/python .ci/docs.py readme >/dev/null || fail "Docs pre-processing (nbdev_proc_nbs) failed."; \
	[ "$$(state)" == "$$before" ] || fail "README.md is out of date: run 'make readme' and commit it."; \
	echo "check-sync: library and notebooks in sync, notebooks clean and with their outputs and unique cell ids, docs pre-processing ok, README current"

# The library notebooks keep the outputs of their examples (the docs site and GitHub show them): after editing a
# notebook, `make outputs NB=nbs/05_learner.ipynb` (or all of them: `make outputs`) runs it as nbdev_test does and keeps them.
NB ?=
outputs: setup
	$(BIN)/python .ci/docs.py outputs $(NB)

# README.md is rendered from nbs/index.ipynb (nbdev_readme needs Quarto; .ci/docs.py does its job without it).
readme: setup
	$(BIN)/python .ci/docs.py readme

# The demo prepares CIFAR-10 from SOURCE when given, else from ../shared/data's copy when there is one, else downloads it.
SOURCE ?= $(wildcard ../shared/data/cifar-10-batches-py)

demo: setup
	$(BIN)/kd_pipeline --arch cnn --dataset cifar10 --preset quick --baselines $(if $(SOURCE),--source $(SOURCE))

# The ViT chain on PneumoniaMNIST (28 px, binary): from MEDMNIST_SOURCE, a folder holding pneumoniamnist.npz, else downloaded.
MEDMNIST_SOURCE ?= $(wildcard ../shared/data/medmnist)

demo-vit: setup
	$(BIN)/kd_pipeline --arch vit --dataset pneumoniamnist --preset quick --baselines $(if $(MEDMNIST_SOURCE),--source $(MEDMNIST_SOURCE))

lab: setup
	$(BIN)/jupyter lab --notebook-dir=.

# The stage notebook in JupyterLab in a real browser (Playwright driving Debian's Chromium): Run All on a tiny stage,
# then no widget or page errors and every panel drawn while it trained. Minutes, and a browser: not part of `make test`.
# BROWSER_ARGS='--arch vit' for the ViT's attention view.
BROWSER_ARGS ?=
browser-check: setup
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq chromium; } || \
	  { echo "browser-check needs Debian's Chromium: apt-get install chromium" >&2; exit 1; }
	@$(BIN)/python -c 'import playwright' 2>/dev/null || $(BIN)/python -m pip install --quiet 'playwright>=1.40,<2'
	$(BIN)/python .ci/browser_check.py $(BROWSER_ARGS)

# A GPU machine runs `make gpu-check` (or `python3 .ci/gpu_check.py` where make is missing) with what its image has;
# `make gpu-prepare` first puts what it lacks into ignored folders that travel with the working tree:
# .whl/ (fastcore for the notebooks' test cells; ipywidgets and IPython for the dashboard's benchmark) and
# .gpu-data/ (the CIFAR-10 copy); gpu_check.py installs the wheels into a side folder itself.
GPU_WHEELS := fastcore ipython ipython_pygments_lexers jedi parso matplotlib-inline pexpect ptyprocess prompt_toolkit \
              wcwidth stack-data executing asttokens pure_eval traitlets ipywidgets comm jupyterlab_widgets widgetsnbextension

gpu-prepare: setup
	rm -rf .whl .gpu-data
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: -d .whl \
	  $$(for p in $(GPU_WHEELS); do echo "$$p==$$($(BIN)/python -m pip show $$p | sed -n 's/^Version: //p')"; done)
	@test -d ../shared/data/cifar-10-batches-py || { echo "gpu-prepare: ../shared/data/cifar-10-batches-py is missing" >&2; exit 1; }
	mkdir -p .gpu-data && cp -r ../shared/data/cifar-10-batches-py .gpu-data/
	@echo "gpu-prepare: $$(ls .whl | wc -l) wheels in .whl/, CIFAR-10 in .gpu-data/ (carry both: they are ignored by git)"

gpu-check:
	python3 .ci/gpu_check.py

docs: setup
	@command -v quarto >/dev/null || { echo "make docs needs Quarto (https://quarto.org/docs/get-started/); it is not on PATH." >&2; exit 1; }
	$(BIN)/nbdev_docs

clean-venv:
	rm -rf $(VENV)
