"""Who is calling, and what they may do: the checks every service starts with.

A caller signed in with a password (an access token) may do all that their account may. A caller
using an API key may do only what the key's scopes allow, on top of that.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import ColumnElement, Uuid, false, literal, true

from api.db.models import User
from api.errors import Forbidden, Unauthenticated
from api.services.commands import Scope

SCOPES = frozenset(get_args(Scope))
# Sending GraphQL documents that are not trusted, where only trusted ones run (``api.graphql.documents``).
ARBITRARY_DOCUMENTS = "graphql:arbitrary"
ADMIN_SCOPES = frozenset({"admin", ARBITRARY_DOCUMENTS})


def granted_scopes(user: User) -> frozenset[str]:
    """What a password sign-in of ``user`` may do: every scope, ``admin`` and ``graphql:arbitrary``
    only for an administrator."""
    return SCOPES if user.is_admin else SCOPES - ADMIN_SCOPES


@dataclass(frozen=True, slots=True)
class Caller:
    user: User
    session_id: uuid.UUID | None = None  # the sign-in session an access token came from
    scopes: frozenset[str] | None = None  # an API key's scopes; None for a signed-in user
    api_key_id: uuid.UUID | None = None
    expires_at: datetime | None = None  # when the access token runs out

    def allows(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes


def acts_as_admin(caller: Caller | None) -> bool:
    """Whether ``caller`` may act as an administrator (with the ``admin`` scope, for an API key)."""
    return caller is not None and caller.user.is_admin and caller.allows("admin")


def sends_any_document(caller: Caller | None) -> bool:
    """Whether ``caller`` may send documents that are not trusted: an administrator signed in, or an
    API key given the ``graphql:arbitrary`` scope."""
    if caller is None or not caller.user.is_admin:
        return False
    return caller.scopes is None or ARBITRARY_DOCUMENTS in caller.scopes


@dataclass(frozen=True, slots=True)
class Visibility:
    """Which rows of a kind a reader sees: every one (an administrator), or their own account's.

    Each kind's rule is one SQL predicate over this (``users.visible_user``, ``fetch_jobs.visible_job``),
    written against its two terms. The services' queries bind them as constants (``constants``); the
    compiled read path (``api.services.reads``) binds them as parameters of a statement planned once for
    every reader (``parameters``), so both paths ask the database the same question.
    """

    viewer_id: uuid.UUID
    sees_all: bool

    def constants(self) -> "VisibilityTerms":
        return (true() if self.sees_all else false()), literal(self.viewer_id, Uuid)


# (sees every row, the reader's account id) as SQL expressions.
VisibilityTerms = tuple[ColumnElement[bool], ColumnElement[Any]]


def require(caller: Caller | None, *scopes: str) -> Caller:
    """``caller``, once it is known to be someone whose credential carries ``scopes``."""
    if caller is None:
        raise Unauthenticated()
    missing = sorted(scope for scope in scopes if not caller.allows(scope))
    if missing:
        raise Forbidden(f"This API key lacks the scope {', '.join(missing)}.")
    return caller


def require_admin(caller: Caller | None, *scopes: str) -> Caller:
    """An administrator (with the ``admin`` scope too, when calling with an API key)."""
    admin = require(caller, *scopes)
    if not acts_as_admin(admin):
        raise Forbidden("Only an administrator may do this.")
    return admin


def require_password_session(caller: Caller | None) -> Caller:
    """Signed in with a password: managing credentials is not for API keys (a leaked key must not be
    able to mint more keys or change the password)."""
    signed_in = require(caller)
    if signed_in.scopes is not None:
        raise Forbidden("Sign in with a password to manage credentials.")
    return signed_in
