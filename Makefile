# The two commands: `make run` (set up and serve on the embedded database) and `make test`.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run install migrate test lint bench schema lock clean

run: migrate  ## Serve on http://$(HOST):$(PORT) (GraphiQL at /graphql, Swagger UI at /docs)
	$(BIN)/switchboard serve --host $(HOST) --port $(PORT)

install: $(STAMP)

$(STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

migrate: install  ## Apply the migrations to the configured database (SQLite by default)
	$(BIN)/switchboard migrate

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint  ## Lint, type-check and run the suite (PostgreSQL too when SWITCHBOARD_TEST_POSTGRES_URL is set)
	$(BIN)/pytest

schema: install  ## Rewrite the committed contracts (schema/schema.graphql, openapi.json) from the code
	$(BIN)/python -m api.contracts

bench: install  ## Measure fetching, the read path against a bare ASGI app, and live delivery (bench/README.md)
	$(BIN)/python -m bench.fetch
	$(BIN)/python -m bench.reads
	$(BIN)/python -m bench.live

lock:  ## Re-resolve requirements.lock from pyproject.toml (needs network access to PyPI)
	$(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet uv
	.venv-lock/bin/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --quiet -o requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
