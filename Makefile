# securecomm — `make demo` runs the main job, `make test` runs every check.
# Both create the virtual environment in .venv on first use (Python ≥ 3.11).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint bench install clean

$(INSTALLED): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "securecomm needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { echo "installing python3-venv"; apt-get install -y -q python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/securecomm simulate --place CT --start 2010-06-29 --end 2015-12-31 --seed 1

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/securecomm policies test
	$(BIN)/python -m pytest

bench: $(INSTALLED)
	$(BIN)/python bench/decide.py
	$(BIN)/python bench/simulate_national.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
