"""A login storm: 200 concurrent sign-ins (argon2id, production parameters) beside a cheap signed-in
read, against a live ``switchboard serve`` on SQLite, and on PostgreSQL when a URL is given.

Reports the read's (``GET /api/v1/users/me`` with a token) p50/p99 alone and during the storm,
``/healthz`` p99 during the storm, and how the sign-ins ended: signed in, refused (429
RATE_LIMITED, 503 SERVICE_UNAVAILABLE) or anything else. The target (DESIGN §12): the read's p99
under 50 ms during the storm.

    python -m bench.logins [--postgres URL] [--logins 200]
"""

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx2

from api.db.engine import Database
from api.security import create_access_token
from api.services import users
from api.services.commands import UserCreate, build
from api.settings import Settings
from bench.databases import fresh
from bench.servers import switchboard

SECRET = "bench-secret-key-that-is-long-enough-for-hs256-signing"
PASSWORD = "bench password"


async def seed(url: str, accounts: int) -> str:
    """Accounts to sign in as (one each, so the per-account limit is not what refuses); a token
    for the reader."""
    await fresh(url)
    database = Database.from_url(url)
    try:
        async with database.session() as session:
            made = [
                await users.create_user(
                    session, data=build(UserCreate, {"email": f"u{n}@example.com", "password": PASSWORD})
                )
                for n in range(accounts + 1)
            ]
    finally:
        await database.dispose()
    settings = Settings(_env_file=None, database_url=url, secret_key=SECRET, access_token_ttl=3600)
    return create_access_token(settings, made[-1].id).token


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


async def timed_reads(
    client: httpx2.AsyncClient, path: str, token: str | None, until: asyncio.Event
) -> list[float]:
    """One request after another until ``until`` is set (at least 50)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    times: list[float] = []
    while not until.is_set() or len(times) < 50:
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return times


async def storm(base: str, token: str, logins: int) -> None:
    limits = httpx2.Limits(max_connections=logins + 10)
    async with httpx2.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        quiet = asyncio.Event()
        quiet.set()
        alone = await timed_reads(client, "/api/v1/users/me", token, quiet)
        done = asyncio.Event()
        readers = [
            asyncio.create_task(timed_reads(client, "/api/v1/users/me", token, done)),
            asyncio.create_task(timed_reads(client, "/healthz", None, done)),
        ]

        async def login(n: int) -> str:
            response = await client.post(
                "/api/v1/auth/token", data={"username": f"u{n}@example.com", "password": PASSWORD}
            )
            if response.status_code == 200:
                return "signed in"
            return f"{response.status_code} {response.json().get('code', response.json().get('error'))}"

        started = time.perf_counter()
        outcomes = Counter(await asyncio.gather(*(login(n) for n in range(logins))))
        elapsed = time.perf_counter() - started
        done.set()
        during, health = await asyncio.gather(*readers)
    p = percentile
    print(f"  /users/me alone:        p50 {p(alone, 0.5):7.1f} ms  p99 {p(alone, 0.99):7.1f} ms")
    print(
        f"  /users/me during storm: p50 {p(during, 0.5):7.1f} ms  p99 {p(during, 0.99):7.1f} ms"
        f"  ({len(during)} reads)"
    )
    print(f"  /healthz during storm:  p50 {p(health, 0.5):7.1f} ms  p99 {p(health, 0.99):7.1f} ms")
    print(f"  {logins} logins in {elapsed:.1f} s: {dict(outcomes)}")


def run(url: str, logins: int) -> None:
    token = asyncio.run(seed(url, logins))
    env = {
        "SWITCHBOARD_DATABASE_URL": url,
        "SWITCHBOARD_SECRET_KEY": SECRET,
        "SWITCHBOARD_ENVIRONMENT": "production",
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        "SWITCHBOARD_RATE_LIMIT_LOGIN_PER_ADDRESS": str(logins * 2),  # all from 127.0.0.1
    }
    with switchboard(env) as server:
        asyncio.run(storm(server.url, token, logins))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", help="also run on this PostgreSQL database (emptied first)")
    parser.add_argument("--logins", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        print("SQLite:")
        run(f"sqlite+aiosqlite:///{Path(directory) / 'logins.db'}", args.logins)
    if args.postgres:
        print("PostgreSQL:")
        run(args.postgres, args.logins)


if __name__ == "__main__":
    main()
