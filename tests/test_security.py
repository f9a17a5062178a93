"""Password hashes and access tokens."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pydantic import ValidationError

from api import security
from api.errors import ServiceUnavailable
from api.security import (
    InvalidToken,
    create_access_token,
    decode_access_token,
    hash_password,
    verify_password,
)
from api.settings import Settings


async def test_passwords_are_hashed_with_argon2id() -> None:
    hashed = await hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert await verify_password("correct horse battery", hashed)
    assert not await verify_password("wrong", hashed)


async def test_an_unknown_account_still_costs_a_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    verified: list[str] = []
    real = security._hasher.verify

    def counting(password: str, hash: str) -> bool:
        verified.append(hash)
        return real(password, hash)

    monkeypatch.setattr(security._hasher, "verify", counting)
    assert await verify_password("anything", None) is False
    assert await verify_password("anything", await hash_password("something else")) is False
    assert len(verified) == 2
    assert verified[0].startswith("$argon2id$")


def test_access_tokens_round_trip_and_carry_the_registered_claims(settings: Settings) -> None:
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    token = create_access_token(settings, user_id, session_id).token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert set(claims) == {"sub", "exp", "iat", "nbf", "iss", "aud", "jti", "typ", "scope", "sid"}
    decoded = decode_access_token(settings, token)
    assert (decoded.user_id, decoded.session_id) == (user_id, session_id)


def _forged(settings: Settings, changes: dict[str, object], *, key: str | None = None) -> str:
    """A token like ours but for ``changes`` (a ``None`` value drops the claim)."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + timedelta(minutes=5),
        "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "typ": "access", "jti": "x",
        **changes,
    }  # fmt: skip
    present = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(present, key or settings.secret_key, algorithm="HS256")


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": None},
        {"exp": datetime.now(UTC) - timedelta(minutes=5)},
        {"aud": "someone-else"},
        {"iss": "someone-else"},
        {"typ": "refresh"},
        {"exp": None},
        {"nbf": datetime.now(UTC) + timedelta(minutes=5)},
    ],
    ids=[
        "no subject",
        "expired",
        "wrong audience",
        "wrong issuer",
        "wrong type",
        "no expiry",
        "not yet valid",
    ],
)
def test_doubtful_tokens_are_refused(settings: Settings, changes: dict[str, object]) -> None:
    with pytest.raises(InvalidToken):
        decode_access_token(settings, _forged(settings, changes))


def test_a_token_signed_with_another_key_is_refused(settings: Settings) -> None:
    with pytest.raises(InvalidToken):
        decode_access_token(settings, _forged(settings, {}, key="another-secret-that-is-at-least-32-bytes"))


def test_an_unsigned_token_is_refused(settings: Settings) -> None:
    """Every claim right, but ``alg: none``: refused for the algorithm alone."""
    valid = jwt.decode(_forged(settings, {}), options={"verify_signature": False})
    token = jwt.encode(valid, key="", algorithm="none")
    with pytest.raises(InvalidToken, match="alg"):
        decode_access_token(settings, token)


def _pem_pair(private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> tuple[str, str]:
    private = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


@pytest.mark.parametrize(
    ("algorithm", "make_key"),
    [
        ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("EdDSA", ed25519.Ed25519PrivateKey.generate),
    ],
)
def test_asymmetric_keys_sign_and_verify(algorithm: str, make_key: Any) -> None:
    private, public = _pem_pair(make_key())
    settings = Settings(
        _env_file=None,
        secret_key="x" * 32,
        jwt_algorithm=algorithm,
        jwt_private_key=private,
        jwt_public_key=public,
    )
    user_id = uuid.uuid4()
    token = create_access_token(settings, user_id).token
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    assert decode_access_token(settings, token).user_id == user_id
    # Algorithm confusion: a token that says HS256 and is keyed with our public key is refused.
    claims = jwt.decode(token, options={"verify_signature": False})
    with pytest.raises(InvalidToken, match="alg"):
        decode_access_token(settings, _hs256(claims, public.encode()))


def _hs256(claims: dict[str, Any], key: bytes) -> str:
    """An HS256 token built by hand (PyJWT rightly refuses to key HMAC with a PEM key)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{part(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def test_an_asymmetric_algorithm_needs_both_keys() -> None:
    with pytest.raises(ValidationError, match="SWITCHBOARD_JWT_PRIVATE_KEY"):
        Settings(_env_file=None, jwt_algorithm="RS256")


def test_a_refresh_token_is_not_an_access_token(settings: Settings) -> None:
    """Refresh tokens are opaque random strings, not JWTs: one sent as a bearer token is refused."""
    with pytest.raises(InvalidToken):
        decode_access_token(settings, "Zq3x0V1b-not-a-jwt-but-a-refresh-token-AAAAAAAAAAA")


async def test_hashing_beyond_its_slots_is_refused_after_a_short_wait() -> None:
    """One slot, held by a hash paused in its thread: the next waits ``wait`` seconds, then 503."""
    hashing = security.Hashing(slots=1, wait=0.2)
    release = threading.Event()

    def slow_hash(password: str) -> str:
        release.wait(5)
        return security._hasher.hash(password)

    first = asyncio.create_task(hashing.run(slow_hash, "a long enough password"))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as refused:
        await hashing.run(security._hasher.hash, "another password")
    waited = time.monotonic() - started
    release.set()
    assert (await first).startswith("$argon2id$")
    assert 0.15 < waited < 1.0
    assert refused.value.status == 503
    assert refused.value.retry_after >= 1
    assert (await hashing.run(security._hasher.hash, "now there is room")).startswith("$argon2id$")


def test_hashing_is_bounded_by_the_cores_by_default() -> None:
    assert security.Hashing().slots == (os.cpu_count() or 1)


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread priorities are a POSIX call")
async def test_hashes_run_at_the_lowest_priority_so_the_event_loop_comes_first() -> None:
    hashing = security.Hashing(slots=1, wait=1)
    priority_there = await hashing.run(os.getpriority, os.PRIO_PROCESS, 0)
    assert priority_there == security.LOWEST_PRIORITY
    assert os.getpriority(os.PRIO_PROCESS, 0) != security.LOWEST_PRIORITY  # the loop's thread is untouched
