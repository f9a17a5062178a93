# syntax=docker/dockerfile:1
# The production image: runtime dependencies only, a non-root user, production settings.
#   docker build -t switchboard .
# With PostgreSQL (several workers share its event bus), the whole stack: `docker compose up` (compose.yaml).
# By hand, migrate once per release before the new version serves, then serve:
#   docker run --rm -e SWITCHBOARD_DATABASE_URL=postgresql://… -e SWITCHBOARD_SECRET_KEY=… switchboard switchboard migrate
#   docker run -p 8000:8000 -e SWITCHBOARD_DATABASE_URL=postgresql://… -e SWITCHBOARD_SECRET_KEY=… switchboard
# On the embedded SQLite database (in the /data volume), serve one worker:
#   docker run -p 8000:8000 -v switchboard-data:/data -e SWITCHBOARD_SECRET_KEY=… switchboard \
#     sh -c 'switchboard migrate && switchboard serve --host 0.0.0.0 --workers 1'

# GraphiQL's browser files, as api/static/package-lock.json locks them (integrity-checked by npm ci);
# only the files the page loads (api/ide.py: GRAPHIQL_FILES) go on, so GraphiQL works offline.
FROM node:20-slim AS ide
WORKDIR /ide
COPY api/static/package.json api/static/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && cd node_modules && mkdir /served \
 && cp --parents graphiql/graphiql.min.css graphiql/graphiql.min.js @graphiql/plugin-explorer/dist/style.css \
    @graphiql/plugin-explorer/dist/index.umd.js react/umd/react.production.min.js \
    react-dom/umd/react-dom.production.min.js /served/

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1
WORKDIR /app
RUN python -m venv /venv
COPY requirements/bootstrap.lock requirements/runtime.lock ./requirements/
RUN /venv/bin/pip install --require-hashes --no-deps -r requirements/bootstrap.lock \
 && /venv/bin/pip install --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY schema ./schema
COPY resolvers ./resolvers
COPY alembic ./alembic
# Installed in place (a .pth file pointing at /app), so the migrations beside the code travel with it;
# then the build backend goes (what bootstrap.lock holds beyond pip and the runtime lock).
RUN /venv/bin/pip install --no-deps --no-build-isolation -e . \
 && /venv/bin/pip uninstall --yes hatchling pathspec pluggy tomlkit trove-classifiers

FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH \
    SWITCHBOARD_ENVIRONMENT=production \
    SWITCHBOARD_LOG_FORMAT=json \
    SWITCHBOARD_DATABASE_URL=sqlite+aiosqlite:////data/switchboard.db
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent switchboard \
 && mkdir /data && chown switchboard:switchboard /data && chmod 0700 /data
COPY --from=build /venv /venv
COPY --from=build /app /app
COPY --from=ide /served /app/api/static/node_modules
WORKDIR /app
VOLUME /data
USER switchboard
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# Two workers need PostgreSQL (SWITCHBOARD_DATABASE_URL): on the default SQLite this refuses to start.
CMD ["switchboard", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
