# The two commands: `make demo` (install, import the sample, embed it, serve it) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export DJANGO_DEBUG ?= 1

.PHONY: install services test lint demo serve clean-db

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, at the version pyproject.toml pins (and every image installs), as the CPU build
	# that lies on this disk (a bare `torch` pulls CUDA).
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Services the tests need: RabbitMQ (the Celery broker), Redis (cache tests) and Chromium for
# the browser tests.
# PostgreSQL + pgvector is the embedded server, started by the first database connection.
services:
	@bash scripts/services.sh

test: install services
	$(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy gallery search bench tests
	$(VENV)/bin/lint-imports

demo: install
	@bash scripts/demo.sh

serve: install
	$(PY) manage.py runserver 127.0.0.1:8000

clean-db:
	$(PY) manage.py embedded_db stop || true
	rm -rf .pgdata
