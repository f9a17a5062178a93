"""DataLoaders, built fresh for each operation so a cache never outlives its session or its viewer."""

import uuid
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from api.db.models import User
from api.services import users
from api.services.callers import Caller


class Loaders:
    def __init__(self, session: AsyncSession, viewer: Callable[[], Caller | None]) -> None:
        async def load_users(keys: Sequence[uuid.UUID]) -> list[User | None]:
            found = await users.get_users(session, viewer(), keys)
            return [found.get(key) for key in keys]

        self.users = DataLoader(load_users)
