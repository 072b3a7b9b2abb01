# The two set-up commands of the README: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist workers for `make test` (the suite is written to run in parallel).
TEST_WORKERS ?= 2
# The languages of the catalogues (besides English, the source language) and what `make messages` skips.
MESSAGES_LANGUAGES := -l es -l pt_BR
MESSAGES_IGNORE := --ignore=.venv --ignore=var --ignore=sandbox --ignore=tests --ignore=benchmarks

.PHONY: run test lint bench screenshots messages clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version.split()[0] + ": run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime-installed

## run: the portal at http://127.0.0.1:8000, its worker and (unless WHAPI_PARTNER_URL is set) the Whapi sandbox
run: $(VENV)/.runtime-installed
	$(BIN)/python -m portal.launcher

## test: the whole suite (SQLite by default, DATABASE_URL when set)
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

## screenshots: retake docs/screenshots/*.png with the browser tests (every test marked browser)
screenshots: $(VENV)/.dev-installed
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -m browser

## messages: the translation catalogues brought up to date with the code (locale/*/LC_MESSAGES/django.po),
## then compiled (the .mo files are kept in the tree, so a fresh clone needs no gettext); needs GNU gettext
messages: $(VENV)/.dev-installed
	$(BIN)/python manage.py makemessages $(MESSAGES_LANGUAGES) --no-obsolete $(MESSAGES_IGNORE)
	$(BIN)/python manage.py compilemessages --ignore=.venv

## lint: ruff's checks and format check
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## bench: the benchmarks, about 15-20 minutes (see docs/benchmarks.md); BENCH_ARGS=--quick for smaller sizes
bench: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
