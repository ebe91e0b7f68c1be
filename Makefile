# Set up a virtual environment in .venv and run the toolkit or its tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test bench lab setup clean

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

bench: setup         ## speed figures quoted in the README
	$(BIN)/python benchmarks/bench_kernel.py
	$(BIN)/python benchmarks/bench_sweep.py

lab: setup           ## JupyterLab on the notebooks
	$(BIN)/pip install --quiet -e '.[lab]'
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
