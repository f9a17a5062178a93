"""The per-operation GraphQL context: what every resolver may reach through ``info.context``."""

from typing import TypeAlias

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from api.db.models import User
from api.settings import Settings
from resolvers.loaders import Loaders


class Context(BaseContext):
    """Built by a FastAPI dependency for each operation: its own session, its own loaders."""

    def __init__(self, *, session: AsyncSession, user: User | None, settings: Settings) -> None:
        super().__init__()
        self.session = session
        self.user = user
        self.settings = settings
        self.loaders = Loaders(session, user)


Info: TypeAlias = strawberry.Info[Context, None]
