"""Persistence: the ORM models, their column types, and the engine and session factory."""
