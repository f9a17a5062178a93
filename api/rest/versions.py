"""Entity tags from a row's version, and ``If-Match`` read into the versions a write may find.

A tag from the version (``User.version``) rather than a digest of the body lets a write check it
where it matters: in the service, in the transaction that writes the row (``users._claim``). A
client that read a profile sends its tag back in ``If-Match``; if the row changed meanwhile, the
write is refused with 412 instead of silently undoing the other change.
"""

from typing import Annotated

from fastapi import Depends, Header, Response

from api.db.models import User
from api.entity_tags import parse


def tagged(response: Response, user: User) -> None:
    """The answer's ``ETag``: the row's version, strong."""
    response.headers["ETag"] = f'"{user.version}"'


def if_match(
    if_match: Annotated[
        str | None,
        Header(
            description="Write only if the resource is still at one of these entity tags (its `ETag`); "
            "412 if it changed."
        ),
    ] = None,
) -> frozenset[str] | None:
    """The versions named by ``If-Match``; ``None`` when any will do (no header, or ``*``: the
    row exists, which the write checks anyway). Weak tags never match a write (RFC 9110 §13.1.1)."""
    if if_match is None:
        return None
    tags = parse(if_match.encode("latin-1"))
    if any(opaque == b"*" for _, opaque in tags):
        return None
    return frozenset(opaque.decode("latin-1") for weak, opaque in tags if not weak)


IfMatch = Annotated[frozenset[str] | None, Depends(if_match)]
