# The two commands the README opens with: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/inventory

.PHONY: demo test lint venv install migrate seed serve bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements/base.txt requirements/dev.txt requirements/prod.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.txt -r requirements/prod.txt
	touch $@

install: $(VENV)/.installed

## Demo: SQLite file, Celery eager, realistic data, served on http://127.0.0.1:8000
demo: install
	env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/python manage.py migrate --noinput
	env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/python manage.py seed_demo --reset
	env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/python manage.py runserver 127.0.0.1:8000

## The whole suite, on PostgreSQL ($$DATABASE_URL, else 127.0.0.1:5432)
test: install
	@DATABASE_URL="$${DATABASE_URL:-$(PG_URL)}" $(BIN)/python scripts/require_postgres.py
	DATABASE_URL="$${DATABASE_URL:-$(PG_URL)}" $(BIN)/python -m pytest -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/mypy
	env -u DATABASE_URL SQLITE_PATH=:memory: $(BIN)/python manage.py makemigrations --check --dry-run

# BENCH_ENFORCEMENT=block make bench: the sale bench with that enforcement mode and holds present
bench: install
	DATABASE_URL="$${DATABASE_URL:-$(PG_URL)}" $(BIN)/python bench/run.py
	DATABASE_URL="$${DATABASE_URL:-$(PG_URL)}" $(BIN)/python bench/discrepancies.py

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
