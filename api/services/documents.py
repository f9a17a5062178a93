"""GraphQL documents registered by their hash (automatic persisted queries): stored once, read by
every worker. The hash is checked by the caller before anything is stored here."""

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import PersistedDocument


async def stored_document(session: AsyncSession, digest: str) -> str | None:
    found: str | None = await session.scalar(
        select(PersistedDocument.document).where(PersistedDocument.digest == digest)
    )
    return found


async def store_document(session: AsyncSession, digest: str, document: str) -> None:
    """Keep ``document`` under ``digest``; one stored already (by another worker, at the same moment)
    is left as it is: it is the same text."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(PersistedDocument).values(digest=digest, document=document)
    await session.execute(statement.on_conflict_do_nothing(index_elements=["digest"]))
