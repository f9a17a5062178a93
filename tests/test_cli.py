"""The ``switchboard`` command, run as a user would run it."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from api.db.engine import Database
from api.db.models import User
from api.security import verify_password
from api.services import users
from api.services.commands import UserCreate, build


def switchboard(*args: str, database: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    return subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "api", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _admins(database: Path) -> list[tuple[str, bool, str]]:
    db = Database.from_url(f"sqlite+aiosqlite:///{database}")
    async with db.session() as session:
        rows = (await session.scalars(select(User))).all()
    await db.dispose()
    return [(u.email, u.is_admin, u.password_hash) for u in rows]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    database = tmp_path_factory.mktemp("cli") / "cli.db"
    result = switchboard("migrate", database=database)
    assert result.returncode == 0, result.stderr
    return database


def test_help_explains_each_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "api", "create-admin", "--help"], capture_output=True, text=True, check=True
    )
    assert "never an argument" in result.stdout


def test_create_admin_reads_the_password_from_stdin(migrated: Path) -> None:
    result = switchboard(
        "create-admin", "Root@Example.com", database=migrated, stdin="a long admin password\n"
    )
    assert result.returncode == 0, result.stderr
    assert "created administrator root@example.com" in result.stdout
    accounts = {
        email: (is_admin, password_hash) for email, is_admin, password_hash in asyncio.run(_admins(migrated))
    }
    is_admin, password_hash = accounts["root@example.com"]
    assert is_admin
    assert asyncio.run(verify_password("a long admin password", password_hash))


def test_create_admin_refuses_clearly(migrated: Path) -> None:
    first = switchboard(
        "create-admin", "twice@example.com", database=migrated, stdin="a long admin password\n"
    )
    assert first.returncode == 0, first.stderr
    again = switchboard(
        "create-admin", "twice@example.com", database=migrated, stdin="a long admin password\n"
    )
    assert (again.returncode, again.stderr.strip()) == (
        1,
        "switchboard: An account with this email already exists. (--promote makes it an administrator)",
    )
    short = switchboard("create-admin", "other@example.com", database=migrated, stdin="short\n")
    assert short.returncode == 1
    assert "password: String should have at least 8 characters" in short.stderr
    assert "Traceback" not in short.stderr + again.stderr


def test_create_admin_promotes_an_existing_account(migrated: Path) -> None:
    """An account registered as anyone (here through the service, as a sign-up would) becomes an
    administrator with --promote; no password is asked, and an unknown email is refused clearly."""

    async def register() -> None:
        db = Database.from_url(f"sqlite+aiosqlite:///{migrated}")
        async with db.session() as session:
            await users.create_user(
                session, data=build(UserCreate, {"email": "later@example.com", "password": "a long password"})
            )
        await db.dispose()

    asyncio.run(register())
    promoted = switchboard("create-admin", "Later@Example.com", "--promote", database=migrated)
    assert promoted.returncode == 0, promoted.stderr
    assert "made later@example.com" in promoted.stdout
    assert ("later@example.com", True) in {
        (email, admin) for email, admin, _ in asyncio.run(_admins(migrated))
    }
    unknown = switchboard("create-admin", "nobody@example.com", "--promote", database=migrated)
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "switchboard: No account has this email.")
