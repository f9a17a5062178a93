"""The ``switchboard`` command: serve the API, migrate the database, create the first administrator."""

import argparse
import asyncio
import getpass
import sys

import uvicorn
from alembic import command
from alembic.config import Config

from api import metrics
from api.db.engine import Database
from api.errors import Conflict, DomainError
from api.logs import configure_logging
from api.migrations import ALEMBIC_INI
from api.services import users
from api.services.commands import UserCreate, build
from api.serving import GRACE_SECONDS, WEBSOCKET_OPTIONS
from api.settings import get_settings


def serve(args: argparse.Namespace) -> None:
    settings = get_settings()  # refuse bad settings here, once, rather than in every worker
    if args.workers > 1 and settings.database_is_sqlite:
        raise SystemExit(
            f"switchboard: --workers {args.workers} needs PostgreSQL: SQLite has no event bus between "
            "processes, so a subscriber on one worker would miss what another does. Serve with "
            "--workers 1, or set SWITCHBOARD_DATABASE_URL=postgresql+asyncpg://..."
        )
    # Our logging, not uvicorn's (``log_config=None``), here for the parent process's own lines;
    # each worker's ``create_app`` sets it up again. Access lines come from our middleware.
    configure_logging(settings.log_format, settings.log_level)
    if settings.metrics_enabled:
        metrics.share_between_workers(args.workers)  # before uvicorn starts them
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        log_config=None,
        access_log=False,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        **WEBSOCKET_OPTIONS,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )


def migrate(args: argparse.Namespace) -> None:
    get_settings()  # refuse bad settings before touching the database
    command.upgrade(Config(ALEMBIC_INI), args.revision)


def _read_password() -> str:
    """From the terminal (asked twice), or one line of standard input: never from an argument, which
    would land in the shell history and the process list."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != password:
        raise SystemExit("switchboard: the passwords differ")
    return password


async def _create_admin(email: str, display_name: str | None, password: str) -> str:
    settings = get_settings()
    database = Database.from_url(settings.database_url)
    try:
        data = build(UserCreate, {"email": email, "password": password, "display_name": display_name})
        async with database.session() as session:
            user = await users.create_user(session, data=data, is_admin=True)
            return f"created administrator {user.email} ({user.id})"
    finally:
        await database.dispose()


async def _promote(email: str) -> str:
    database = Database.from_url(get_settings().database_url)
    try:
        async with database.session() as session:
            user = await users.promote(session, email=email)
            return f"made {user.email} ({user.id}) an administrator"
    finally:
        await database.dispose()


def create_admin(args: argparse.Namespace) -> None:
    try:
        if args.promote:
            print(asyncio.run(_promote(args.email)))
            return
        print(asyncio.run(_create_admin(args.email, args.display_name, _read_password())))
    except Conflict as exc:
        raise SystemExit(f"switchboard: {exc.message} (--promote makes it an administrator)") from None
    except DomainError as exc:
        raise SystemExit(f"switchboard: {exc.message}") from None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="switchboard",
        description="Switchboard: a GraphQL-first API service. Settings come from SWITCHBOARD_* "
        "environment variables or a .env file (SWITCHBOARD_DATABASE_URL, SWITCHBOARD_SECRET_KEY, ...).",
    )
    commands = root.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("serve", help="serve the API with uvicorn", description="Serve the API.")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    run.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    run.add_argument(
        "--workers", type=int, default=1, help="worker processes; more than one needs PostgreSQL (default: 1)"
    )
    run.set_defaults(handler=serve)

    up = commands.add_parser(
        "migrate", help="apply the database migrations", description="Upgrade the database schema."
    )
    up.add_argument("revision", nargs="?", default="head", help="target revision (default: %(default)s)")
    up.set_defaults(handler=migrate)

    admin = commands.add_parser(
        "create-admin",
        help="create an administrator account, or promote an existing one",
        description="Create an administrator. The password is asked for on the terminal, or read as one "
        "line from standard input (echo ... | switchboard create-admin EMAIL); it is never an argument.",
    )
    admin.add_argument("email")
    admin.add_argument("--display-name", default=None)
    admin.add_argument(
        "--promote",
        action="store_true",
        help="make the existing account of EMAIL an administrator (and active); no password is asked",
    )
    admin.set_defaults(handler=create_admin)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.handler(args)
