"""Running the alembic migrations from code (the test suite, the CLI) on a connection we hold."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from api.db import models  # noqa: F401  (registers the tables on the metadata)
from api.db.base import Base

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def alembic_config(connection: Connection) -> Config:
    config = Config(ALEMBIC_INI)
    config.attributes["connection"] = connection
    config.attributes["configure_logger"] = False
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    command.upgrade(alembic_config(connection), revision)


def downgrade(connection: Connection, revision: str = "base") -> None:
    command.downgrade(alembic_config(connection), revision)


def foreign_tables(connection: Connection) -> set[str]:
    """Tables in the database that are not ours: a reason not to wipe it (tests and benchmarks reset
    the database they are given, and must not do so to one that holds somebody else's data)."""
    ours = set(Base.metadata.tables) | {"alembic_version"}
    return set(inspect(connection).get_table_names()) - ours
