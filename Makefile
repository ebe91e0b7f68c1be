# Set up a virtual environment in .venv and run the toolkit or its tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check nojit bench lab setup clean

# the fast lane: model, kernel against the reference, page content, schema, units, CLI
CHECK_TESTS := tests/test_units.py tests/test_scenario.py tests/test_model.py \
	tests/test_reference.py tests/test_page_content.py tests/test_schema.py tests/test_cli.py \
	tests/test_baselines.py tests/test_workloads.py tests/test_convergence_features.py \
	tests/test_policies.py tests/test_qemu_guest.py tests/test_robustness.py tests/test_fuzz.py

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/activate

setup: $(BIN)/activate

run: setup           ## the main job on the embedded default
	$(BIN)/python -m toolkit

test: setup          ## the whole test suite (notebooks included)
	$(BIN)/python -m pytest

check: setup         ## the fast lane (under 90 s), for the edit-test loop
	$(BIN)/ruff check toolkit tests benchmarks
	$(BIN)/python -m pytest -q -m "not slow" $(CHECK_TESTS)

nojit: setup         ## the kernel against the reference as plain Python (a debugger steps into it)
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q tests/test_reference.py

bench: setup         ## speed figures quoted in the README
	$(BIN)/python benchmarks/bench_kernel.py
	$(BIN)/python benchmarks/bench_sweep.py

lab: setup           ## JupyterLab on the notebooks
	$(BIN)/pip install --quiet -e '.[lab]'
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
