# syntax=docker/dockerfile:1
# Build: docker build -t switchboard .
# Migrate (once per release, before the new version serves):
#   docker run --rm -e SWITCHBOARD_DATABASE_URL=postgresql://… switchboard alembic upgrade head
# Serve:
#   docker run -p 8000:8000 -e SWITCHBOARD_DATABASE_URL=postgresql://… -e SWITCHBOARD_SECRET_KEY=… \
#     -e SWITCHBOARD_ENVIRONMENT=production switchboard

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN python -m venv /venv
COPY requirements.lock ./
RUN /venv/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY schema ./schema
COPY resolvers ./resolvers
COPY alembic ./alembic
RUN /venv/bin/pip install --no-deps --no-build-isolation .

FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 PATH=/venv/bin:$PATH SWITCHBOARD_LOG_FORMAT=json
RUN useradd --system --uid 10001 --home-dir /app switchboard
WORKDIR /app
COPY --from=build /venv /venv
COPY --chown=root:root alembic.ini ./
COPY --chown=root:root alembic ./alembic
USER switchboard
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"]
CMD ["switchboard", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
