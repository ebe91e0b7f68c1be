# Set up a virtual environment in .venv and run the toolkit, its tests or its docs.
# Each target installs only the extra it needs, once: a stamp file in .venv records
# it, and is redone only when pyproject.toml or setup.py changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check
# JupyterLab refuses to start as root without this flag
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: run test check nojit bench lab docs setup clean

# the fast lane: model, kernel against the reference, page content, schema, units, CLI
CHECK_TESTS := tests/test_units.py tests/test_scenario.py tests/test_model.py \
	tests/test_reference.py tests/test_page_content.py tests/test_schema.py tests/test_cli.py \
	tests/test_baselines.py tests/test_workloads.py tests/test_convergence_features.py \
	tests/test_policies.py tests/test_qemu_guest.py tests/test_robustness.py tests/test_fuzz.py \
	tests/test_docs.py tests/test_multifd.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

# .venv/.installed-run, -test, -lab, -docs: the package with that extra ("run": none)
$(VENV)/.installed-%: pyproject.toml setup.py | $(BIN)/python
	$(PIP) -e '.$(if $(filter run,$*),,[$*])'
	touch $@

setup: $(VENV)/.installed-run

run: $(VENV)/.installed-run      ## the main job on the embedded default
	$(BIN)/python -m toolkit

test: $(VENV)/.installed-test    ## the whole test suite (notebooks included)
	$(BIN)/python -m pytest

check: $(VENV)/.installed-test   ## the fast lane (under 90 s), for the edit-test loop
	$(BIN)/ruff check toolkit tests benchmarks
	$(BIN)/python -m pytest -q -m "not slow" $(CHECK_TESTS)

nojit: $(VENV)/.installed-test   ## the kernel against the reference as plain Python (a debugger steps into it)
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q tests/test_reference.py

bench: $(VENV)/.installed-run    ## speed figures quoted in the README
	$(BIN)/python benchmarks/bench_kernel.py
	$(BIN)/python benchmarks/bench_sweep.py

lab: $(VENV)/.installed-lab      ## JupyterLab on the notebooks
	$(BIN)/jupyter lab $(LAB_ROOT) notebooks/

# the notebooks run at build time, once per change (myst-nb's cache in docs/_build);
# SPHINXOPTS="-D nb_execution_mode=off" renders them without running them
SPHINXOPTS ?=
docs: $(VENV)/.installed-docs    ## the docs site in docs/_build/html (warnings are errors)
	$(BIN)/python -m sphinx -W --keep-going $(SPHINXOPTS) -b html docs docs/_build/html

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis docs/_build docs/api/generated docs/notebooks
	find . -name __pycache__ -prune -exec rm -rf {} +
