"""Checking many live callers again at once: the answer for each is what checking it alone would
give, and the number of queries does not grow with the number of callers."""

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import update

from api.db.engine import Database
from api.db.models import User
from api.db.types import utcnow
from api.errors import Unauthenticated
from api.services import api_keys, auth, sessions
from api.services.callers import Caller
from api.services.commands import ApiKeyCreate
from tests.conftest import settings_for_tests
from tests.factories import make_user
from tests.sql import statements


async def test_many_callers_are_checked_in_three_queries_each_as_if_alone(database: Database) -> None:
    settings = settings_for_tests()
    fine, logged_out, deactivated, keyed, revoked_key = [await make_user(database) for _ in range(5)]
    later = utcnow() + timedelta(hours=1)
    async with database.session() as session:
        started = [
            await sessions.start(session, settings=settings, user=user)
            for user in (fine, logged_out, deactivated)
        ]
        families = [(await sessions.find(session, refresh_token=s.refresh_token)).family_id for s in started]  # type: ignore[union-attr]
        await sessions.revoke_family(session, family_id=families[1])
        await session.execute(update(User).where(User.id == deactivated.id).values(is_active=False))
        keys = [
            await api_keys.create_api_key(
                session, actor=Caller(user), data=ApiKeyCreate(name="k", scopes=["fetch"])
            )
            for user in (keyed, revoked_key)
        ]
        await api_keys.revoke_api_key(session, actor=Caller(revoked_key), key_id=keys[1].key.id)

    def signed(n: int) -> Caller:
        return Caller(started[n].user, session_id=families[n], expires_at=later)

    callers = [
        signed(0),
        signed(1),
        signed(2),
        replace(signed(0), expires_at=utcnow() - timedelta(seconds=1)),
        Caller(keyed, scopes=frozenset({"fetch"}), api_key_id=keys[0].key.id),
        Caller(revoked_key, scopes=frozenset({"fetch"}), api_key_id=keys[1].key.id),
    ]
    async with database.session() as session:
        with statements(database.engine) as sent:
            checked = await auth.recheck_many(session, callers=callers * 50)
    assert len(sent) == 3

    messages = [c.message if isinstance(c, Unauthenticated) else c.user.id for c in checked]
    assert (
        messages
        == [
            fine.id,
            "The sign-in session has ended.",
            auth.INVALID_ACCESS,
            auth.INVALID_ACCESS,
            keyed.id,
            "Invalid API key.",
        ]
        * 50
    )
    for caller, outcome in zip(callers, checked, strict=False):
        async with database.session() as session:
            try:
                alone: Caller | Unauthenticated = await auth.recheck(session, caller=caller)
            except Unauthenticated as refused:
                alone = refused
        assert type(alone) is type(outcome)
        if isinstance(alone, Caller):
            assert isinstance(outcome, Caller)
            assert alone.user.id == outcome.user.id
