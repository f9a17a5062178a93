"""Password hashing and access tokens.

Hashing is argon2id through pwdlib and runs in threads of its own at the lowest CPU priority: a hash
takes tens of milliseconds of CPU on several cores, which would otherwise stall every other request
on the event loop. At most one hash per core
runs at once (``HASHING``): more would only share the same cores slower, and two hundred sign-ins at
once would fill anyio's forty worker threads and leave none for anything else. A hash that cannot
start within ``HASHING.wait`` seconds is refused with ``Overloaded`` (503, ``Retry-After``)
rather than queued for ever. Callers hash and verify while they hold no database connection.
"""

import asyncio
import hashlib
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TypeVar

import anyio.to_thread
import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from api.errors import Overloaded
from api.settings import Settings

_hasher = PasswordHash((Argon2Hasher(),))
LOWEST_PRIORITY = 19  # the nice value of hashing threads
T = TypeVar("T")


@cache
def _dummy_hash() -> str:
    return _hasher.hash("switchboard-dummy-password")


def _verify_dummy(password: str) -> None:
    """What an unknown account costs: one verification, like a known one (the dummy hash itself is
    made once, by ``prepare_dummy_hash`` at start-up, so the first unknown email is not slower)."""
    _hasher.verify(password, _dummy_hash())


async def prepare_dummy_hash() -> None:
    await anyio.to_thread.run_sync(_dummy_hash)


class Hashing:
    """How many hashes run at once (``slots``, one per core by default) and how long one may wait
    for a slot (``wait`` seconds) before it is refused; ``configure`` sets both from the settings."""

    def __init__(self, slots: int | None = None, wait: float = 3.0) -> None:
        self.configure(slots, wait)

    def configure(self, slots: int | None, wait: float) -> None:
        self.slots = slots or os.cpu_count() or 1
        self.wait = wait
        self._limiter = anyio.CapacityLimiter(self.slots)
        if threads := getattr(self, "_threads", None):
            threads.shutdown(wait=False)  # its hashes in flight finish; it takes no more
        self._threads = ThreadPoolExecutor(self.slots, "password-hashing", initializer=_yield_to_the_loop)

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """``work(*args)`` in a hashing thread once a slot is free; ``ServiceUnavailable`` if none
        frees up within ``wait`` seconds (``Overloaded``)."""
        with anyio.move_on_after(self.wait) as waiting:
            await self._limiter.acquire()
        if waiting.cancelled_caught:
            raise Overloaded("every password-hashing slot is busy", retry_after=1)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, work, *args)
        finally:
            self._limiter.release()


def _yield_to_the_loop() -> None:
    """Hashing threads run at the lowest CPU priority (Linux keeps a nice value per thread, and the
    threads argon2 starts for its lanes inherit it): the cores still go to hashing whenever nothing
    else wants them, but the event loop's thread is scheduled first, so cheap requests keep their
    latency under a sign-in storm."""
    with suppress(OSError):  # a platform without per-thread priorities hashes at normal priority
        os.setpriority(os.PRIO_PROCESS, 0, LOWEST_PRIORITY)


HASHING = Hashing()

ACCESS_TOKEN_TYPE = "access"


async def hash_password(password: str) -> str:
    return await HASHING.run(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Check a password; with no hash (unknown account) it verifies against a dummy and says no."""
    if password_hash is None:
        await HASHING.run(_verify_dummy, password)
        return False
    return await HASHING.run(_hasher.verify, password, password_hash)


def secret_digest(secret: str) -> str:
    """How refresh tokens and API keys are stored: their SHA-256. They are 256 random bits, so a fast
    hash is enough (a slow one guards guessable passwords), and a stolen table yields nothing usable."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int


def create_access_token(
    settings: Settings, user_id: uuid.UUID, session_id: uuid.UUID | None = None, scope: str = ""
) -> AccessToken:
    """A signed access token; ``session_id`` (claim ``sid``) names the sign-in session it came from.
    ``scope`` tells the client what the account could do when it signed in; what a request may do
    is read from the account itself each time, so a demotion counts at once."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=settings.access_token_ttl),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": uuid.uuid4().hex,
        "typ": ACCESS_TOKEN_TYPE,
        "scope": scope,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    token = jwt.encode(claims, settings.jwt_signing_key, algorithm=settings.jwt_algorithm)
    return AccessToken(token=token, expires_in=settings.access_token_ttl)


class InvalidToken(Exception):
    """The token is malformed, expired, or not one of ours."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID | None
    expires_at: datetime


# Tokens whose signature and claims checked out, with what they said. A client presents one token for
# its whole life (15 minutes), and verifying it (PyJWT) costs more than the rest of a cached read.
_verified: OrderedDict[tuple[str, ...], AccessClaims] = OrderedDict()
VERIFIED_TOKENS = 10_000
LEEWAY = 10  # seconds of clock skew allowed, as PyJWT's ``leeway``


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    """Whom an access token speaks for; raises ``InvalidToken`` for anything doubtful.

    A token verified before, under the same key and claims expected, is not verified again: only its
    expiry is checked (its other time claims only become truer). The memo is keyed by the whole
    token, signature included, so a token differing in one byte is verified from scratch."""
    key = (
        token,
        settings.jwt_verification_key,
        settings.jwt_algorithm,
        settings.jwt_audience,
        settings.jwt_issuer,
    )
    known = _verified.get(key)
    if known is not None:
        if known.expires_at.timestamp() + LEEWAY < time.time():
            raise InvalidToken("Signature has expired")
        return known
    claims = _verify(settings, token)
    _verified[key] = claims
    if len(_verified) > VERIFIED_TOKENS:
        _verified.popitem(last=False)
    return claims


def _verify(settings: Settings, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_verification_key,
            # One algorithm, pinned: a token may not choose how it is checked (alg "none", or HS256
            # keyed with our public key, are refused for it).
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "typ"]},
        )
        if claims["typ"] != ACCESS_TOKEN_TYPE:
            raise InvalidToken("not an access token")
        sid = claims.get("sid")
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        return AccessClaims(uuid.UUID(claims["sub"]), uuid.UUID(sid) if sid else None, expires_at)
    except (jwt.PyJWTError, ValueError) as exc:
        raise InvalidToken(str(exc)) from exc
