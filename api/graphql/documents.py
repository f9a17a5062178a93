"""Documents named by their SHA-256: trusted documents and automatic persisted queries (APQ).

A request may name its document instead of sending it: ``documentId`` (``"<hash>"`` or
``"sha256:<hash>"``, as GraphQL Codegen's client preset and the GraphQL over HTTP draft send it), or
APQ's ``extensions.persistedQuery.sha256Hash``. The router turns either into the document's text
before Strawberry sees the request.

Where the text comes from: the manifest of trusted documents, loaded at start (``allowed-*``
policies), else the documents clients registered (with APQ on: a hash sent with its document is
checked and stored, in the database so that every worker knows it, and kept here once seen). Under
``allowed-only`` a document outside the manifest runs only for a caller that may send any
(``sends_any_document``), and nobody else may register one.
"""

import hashlib
import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import DomainError, Forbidden, Unauthenticated
from api.services.callers import Caller, sends_any_document
from api.services.documents import store_document, stored_document
from api.settings import Settings
from resolvers.context import Context

Policy = Literal["off", "allowed-and-arbitrary", "allowed-only"]
DIGEST = re.compile(r"[0-9a-f]{64}")
KEPT = 1024  # registered documents kept in the process once seen


class PersistedQueryNotFound(DomainError):
    """The hash is not known: an APQ client sends the document with it next (the message is the
    one Apollo's clients look for)."""

    code = "PERSISTED_QUERY_NOT_FOUND"
    title = "PersistedQueryNotFound"


class PersistedQueryNotSupported(DomainError):
    code = "PERSISTED_QUERY_NOT_SUPPORTED"
    title = "PersistedQueryNotSupported"


class PersistedQueryNotAllowed(Forbidden):
    code = "PERSISTED_QUERY_NOT_ALLOWED"
    title = "Only trusted documents run here: send the documentId of one."


class DocumentHashMismatch(DomainError):
    title = "The document's SHA-256 is not the hash sent with it."


class DocumentIdInvalid(DomainError):
    title = "A document id is a SHA-256 in lower-case hex, with or without a sha256: prefix."


def digest_of(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def load_manifest(path: Path) -> dict[str, str]:
    """The trusted documents of a manifest, by hash; ``ValueError`` saying what is wrong with it."""
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the trusted documents of {path}: {exc}") from None
    if not isinstance(manifest, dict) or not all(isinstance(v, str) for v in manifest.values()):
        raise ValueError(f"{path} is not a JSON object of hashes to documents")
    wrong = [key for key, document in manifest.items() if key != digest_of(document)]
    if wrong:
        raise ValueError(f"{path}: {len(wrong)} documents are not under their SHA-256, as {wrong[0]!r}")
    return manifest


def named_digest(document_id: object, extensions: object) -> str | None:
    """The hash a request names its document by, if it names one; ``DocumentIdInvalid`` for one
    that is not a SHA-256."""
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    if document_id is None and persisted is None:
        return None
    if document_id is not None:
        digest = document_id.removeprefix("sha256:") if isinstance(document_id, str) else None
    else:
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise DocumentIdInvalid
    return digest


class Documents:
    """What this process knows of documents by hash, and its policy (see the module's docstring)."""

    def __init__(self, policy: Policy, manifest: dict[str, str], *, apq: bool) -> None:
        self.policy = policy
        self.manifest = manifest
        self.apq = apq
        self._registered: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def of(cls, settings: Settings) -> "Documents":
        path = settings.graphql_trusted_documents
        manifest = {} if settings.graphql_document_policy == "off" or path is None else load_manifest(path)
        return cls(settings.graphql_document_policy, manifest, apq=settings.graphql_apq)

    def peek(self, digest: str) -> str | None:
        """The document under ``digest`` if this process holds it, whoever asks (to tell what kind
        of operation a request is, never to run it)."""
        return self.manifest.get(digest) or self._registered.get(digest)

    def known(self, query: str | None, digest: str | None, caller: Caller | None) -> str | None:
        """The text to run, when it is known in the process and may run for ``caller``; ``None``
        when it is for ``text`` to say (it may need the database, or refuse)."""
        try:
            found = self._text(query, digest, caller)
        except DomainError:
            return None
        return found

    async def resolve(
        self, query: str | None, extensions: dict[str, Any] | None, context: Context
    ) -> str | None:
        """The text a request runs, from what it sent (``text``), for the operation's caller and on
        its session; the document id of our ``documentId`` rides in the extensions, as APQ's hash."""
        given = extensions or {}
        digest = named_digest(given.get("documentId"), given)
        try:
            caller = context.caller
        except Unauthenticated:
            caller = None  # the operation says so, if it needs someone
        return await self.text(context.session, query, digest, caller)

    async def text(
        self, session: AsyncSession, query: str | None, digest: str | None, caller: Caller | None
    ) -> str | None:
        """The text to run (``None``: the request has none, which Strawberry answers), or the
        refusal: the hash is unknown or does not match, or the document may not run for ``caller``.
        A registration is stored with the operation's session: kept if the operation is."""
        found = self._text(query, digest, caller)
        if found is not None or digest is None:
            return found
        if query is not None:  # a registration, checked by ``_text``
            await store_document(session, digest, query)
            self._keep(digest, query)
            return query
        stored = await stored_document(session, digest)
        if stored is None:
            raise PersistedQueryNotFound
        self._keep(digest, stored)
        return stored

    def _text(self, query: str | None, digest: str | None, caller: Caller | None) -> str | None:
        """What can be said without the database: the text, a refusal, or ``None`` when a
        registration is to be stored or a registered document read."""
        free = self.policy != "allowed-only" or sends_any_document(caller)
        if digest is None:
            if query is None or free or digest_of(query) in self.manifest:
                return query
            raise PersistedQueryNotAllowed
        if query is not None and digest_of(query) != digest:
            raise DocumentHashMismatch
        trusted = self.manifest.get(digest)
        if trusted is not None:
            return trusted
        if not self.apq:
            raise PersistedQueryNotFound if self.manifest else PersistedQueryNotSupported
        if not free:
            raise PersistedQueryNotAllowed
        if query is not None:
            return None if digest not in self._registered else query
        registered = self._registered.get(digest)
        if registered is not None:
            self._registered.move_to_end(digest)
        return registered

    def _keep(self, digest: str, document: str) -> None:
        self._registered[digest] = document
        if len(self._registered) > KEPT:
            self._registered.popitem(last=False)
