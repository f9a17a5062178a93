# The two commands: `make run` (set up and serve on the embedded database) and `make test`.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
LOCKS := requirements
checksum = $(shell cat $(1) | cksum | cut -d' ' -f1)
BOOTSTRAPPED := $(VENV)/.bootstrap-$(call checksum,$(LOCKS)/bootstrap.lock)
RUNTIME := $(VENV)/.runtime-$(call checksum,$(LOCKS)/bootstrap.lock $(LOCKS)/runtime.lock pyproject.toml)
DEV := $(VENV)/.dev-$(call checksum,$(LOCKS)/bootstrap.lock $(LOCKS)/dev.lock pyproject.toml)
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-input
FAILED := { echo "make: the install failed (the lines above say why); check that PyPI is reachable, then run 'make clean' and try again" >&2; exit 1; }

.PHONY: run install install-dev migrate ide sse-client test lint bench schema lock clean

run: migrate ide  ## Serve on http://$(HOST):$(PORT) (GraphiQL at /graphql, Swagger UI at /docs)
	$(BIN)/switchboard serve --host $(HOST) --port $(PORT)

install: $(RUNTIME)  ## The runtime dependencies and the project, into .venv
install-dev: $(DEV)  ## Also the development tools (pytest, mypy, ruff)

# Whatever pip this Python bundled only installs the pinned, hash-checked pip and build backend; that
# pip then installs the locks. So the install does not depend on how old the bundled pip is.
$(BOOTSTRAPPED):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "make: Python 3.11 or newer is needed (make PYTHON=python3.12 ...)")'
	@echo "make: creating $(VENV) with the pinned pip and build backend ($(LOCKS)/bootstrap.lock)"
	@$(PYTHON) -m venv $(VENV) || $(FAILED)
	@$(PIP) --require-hashes --no-deps -r $(LOCKS)/bootstrap.lock || $(FAILED)
	@rm -f $(VENV)/.bootstrap-* && touch $@

$(RUNTIME): $(BOOTSTRAPPED)
	@echo "make: installing $(LOCKS)/runtime.lock and the project"
	@$(PIP) --require-hashes -r $(LOCKS)/runtime.lock || $(FAILED)
	@$(PIP) --no-deps --no-build-isolation -e . || $(FAILED)
	@rm -f $(VENV)/.runtime-* && touch $@

$(DEV): $(RUNTIME)
	@echo "make: installing $(LOCKS)/dev.lock (the development tools)"
	@$(PIP) --require-hashes -r $(LOCKS)/dev.lock || $(FAILED)
	@rm -f $(VENV)/.dev-* && touch $@

# GraphiQL's browser files from the npm registry, as api/static/package-lock.json locks them (npm ci
# checks each package's integrity), so the page serves them itself and works offline. Without npm, or
# when the registry cannot be reached, it says so in one line and GraphiQL loads the same files from
# unpkg.com, checked by their SRI hashes (api/ide.py).
IDE := api/static
ide: $(IDE)/node_modules/.package-lock.json  ## GraphiQL's files from npm, for offline use (skipped without npm)
$(IDE)/node_modules/.package-lock.json: $(IDE)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "make: npm not found, so GraphiQL will load its files from unpkg.com (install Node.js and npm, then 'make ide', to use it offline)"; \
	elif npm ci --prefix $(IDE) --ignore-scripts --no-audit --no-fund --loglevel=error; then touch $@; \
	else echo "make: npm ci failed (above), so GraphiQL will load its files from unpkg.com"; fi

migrate: install  ## Apply the migrations to the configured database (SQLite by default)
	$(BIN)/switchboard migrate

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The graphql-sse protocol's own client, which the SSE tests run (they skip, saying so, without npm).
SSE_CLIENT := tests/sse_client
sse-client: $(SSE_CLIENT)/node_modules/.package-lock.json
$(SSE_CLIENT)/node_modules/.package-lock.json: $(SSE_CLIENT)/package-lock.json
	@if ! command -v npm >/dev/null 2>&1; then echo "make: npm not found, so the graphql-sse client tests will skip"; \
	elif npm ci --prefix $(SSE_CLIENT) --ignore-scripts --no-audit --no-fund --loglevel=error; then touch $@; \
	else echo "make: npm ci failed (above), so the graphql-sse client tests will skip"; fi

test: lint ide sse-client  ## Lint, type-check and run the suite (PostgreSQL too when SWITCHBOARD_TEST_POSTGRES_URL is set)
	$(BIN)/pytest

schema: install  ## Rewrite the committed contracts (schema/schema.graphql, openapi.json) from the code
	$(BIN)/python -m api.contracts

bench: install-dev  ## Measure fetching, the read path against a bare ASGI app, and live delivery (bench/README.md)
	$(BIN)/python -m bench.fetch
	$(BIN)/python -m bench.reads
	$(BIN)/python -m bench.live
	$(BIN)/python -m bench.job_feed
	$(BIN)/python -m bench.encodings
	$(BIN)/python -m bench.logins $(if $(SWITCHBOARD_BENCH_POSTGRES_URL),--postgres $(SWITCHBOARD_BENCH_POSTGRES_URL))

lock:  ## Re-resolve the three locks in requirements/ from pyproject.toml (needs PyPI)
	$(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet uv==0.13.9
	.venv-lock/bin/uv pip compile $(LOCKS)/bootstrap.in --universal --python-version 3.11 \
		--generate-hashes --quiet -o $(LOCKS)/bootstrap.lock
	.venv-lock/bin/uv pip compile pyproject.toml -c $(LOCKS)/bootstrap.lock --universal \
		--python-version 3.11 --generate-hashes --quiet -o $(LOCKS)/runtime.lock
	.venv-lock/bin/uv pip compile pyproject.toml --extra dev -c $(LOCKS)/runtime.lock --universal \
		--python-version 3.11 --generate-hashes --quiet -o $(LOCKS)/dev.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(IDE)/node_modules $(SSE_CLIENT)/node_modules
