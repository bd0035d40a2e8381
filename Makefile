# securecomm — `make demo` runs the main job, `make test` runs every check.
# Both create the virtual environment in .venv on first use (Python ≥ 3.11).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint bench install clean browser postgres

$(INSTALLED): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "securecomm needs Python 3.11 or newer (set PYTHON=...)"; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { echo "installing python3-venv"; apt-get install -y -q python3-venv >/dev/null; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/securecomm compare --place CT --start 2010-06-29 --end 2015-12-31 \
		--policies us/ice-request,historical,ct/case-by-case-2012,ct/trust-act-2013,ct/doc-2014,ct/trust-act-2019,ca/santa-clara/policy-3-54-2011 \
		--replications 20 --seed 1 --report report.html

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The report test renders in a real headless browser: Debian's chromium (browser downloads fail here).
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium"; \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }

# The detainer desk's tests start a throwaway PostgreSQL server of their own (initdb + pg_ctl in a
# temporary directory, Unix socket only: tests/desk/pgserver.py); they need Debian's server binaries,
# which live in /usr/lib/postgresql/<version>/bin. With SECURECOMM_REQUIRE_POSTGRES set they fail, not skip.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "installing Debian's postgresql"; \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }

test: lint browser postgres
	$(BIN)/securecomm policies test
	SECURECOMM_REQUIRE_BROWSER=1 SECURECOMM_REQUIRE_POSTGRES=1 $(BIN)/python -m pytest

bench: $(INSTALLED)
	$(BIN)/python bench/decide.py
	$(BIN)/python bench/simulate_national.py
	$(BIN)/python bench/compare.py
	$(BIN)/python bench/desk_load.py
	$(BIN)/python bench/validate.py
	$(BIN)/python bench/calibrate.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
