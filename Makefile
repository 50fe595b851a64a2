# `make run` and `make test` set up .venv on first use (a second call skips set-up that is done).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test lint format clean

setup: $(STAMP)

# Exact pins for these machines live in constraints.txt; version ranges live in pyproject.toml.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -c constraints.txt -e ".[all]"
	touch $(STAMP)

run: setup
	$(VENV)/bin/continual-run

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PYTHON) -m pytest
	$(PYTHON) -m pytest --nbmake notebooks

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) outputs multirun
