# Two commands on a fresh machine: `make run` (the main job on the built-in synthetic network)
# and `make test` (the test suite). Both create .venv and install the project when needed:
# with the extra `reports` (the plots `make run` logs) and `test` (the suite's tools; it brings
# the extras the suite tests too: serve, reports, ann and spark).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[reports,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(BIN)/recsys train --config configs/default.yaml --output artifacts

# the lint and the import contracts first: a layout or formatting break fails in seconds
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest

clean:
	rm -rf artifacts mlflow.db mlruns .pytest_cache
