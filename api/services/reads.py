"""Reads compiled whole: a nested selection over accounts, jobs and results answered by one SQL
statement, the database building the answer's JSON text.

A transport describes what it wants once, as a tree of ``Member``s (``api.graphql.planning`` builds
one per GraphQL document); ``Selection`` turns the tree into one ``SELECT`` of correlated subqueries,
once for each set of optional arguments a request leaves out, and ``answer`` runs it for each request
with the request's arguments and reader bound as parameters. Leaving a condition out instead of
writing ``$1 IS NULL OR id > $1`` keeps each statement's plan the same for every request, so
PostgreSQL can plan it once (a generic plan) and still walk an index from a cursor.

Nothing here is a second copy of a rule: who sees what is the services' own predicates
(``users.visible_user``, ``fetch_jobs.visible_job``), the refusals are theirs (``user_visibility``,
``listing_visibility``, ``job_visibility``), and each argument is checked by the function the
services' own reads check it with (``PageRequest``, ``decode_cursor``, ``search_pattern``,
``node_key``). A refusal or a bad argument raises here as it would there (``answer_on`` answers
``None`` for it), and the transport then answers the way it always does; so does a row that is
missing where the services would raise (``NotFound``), which the statement marks (``MISSING``)
instead of answering.

PostgreSQL only (``json_build_object``, ``json_agg``): on SQLite the transports keep their usual
path, whose cost there is not a network round trip per statement.
"""

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    FromClause,
    Integer,
    Select,
    String,
    Text,
    Uuid,
    bindparam,
    case,
    cast,
    false,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.engine import Database
from api.db.models import FetchJob, FetchResult, JobStatus, Outcome, User
from api.db.outages import unavailable
from api.errors import DomainError
from api.ids import NodeType, from_global_id, node_key
from api.services.callers import Caller
from api.services.commands import build
from api.services.fetch_jobs import job_visibility, visible_job
from api.services.pagination import PageRequest, decode_cursor
from api.services.users import (
    listing_visibility,
    matches_search,
    search_pattern,
    user_visibility,
    visible_user,
)

DIALECT = "postgresql"
logger = logging.getLogger("switchboard.errors")
# What the statement answers in place of a row the services would refuse as missing (``NotFound``).
# PostgreSQL text cannot hold a NUL character, so no stored value renders as this escape.
MISSING = "\\u0000missing"
MAX_MEMBERS = 50  # json_build_object takes at most 100 arguments
# The arguments a request may leave out; a statement has no condition for one that is left out.
OPTIONAL = frozenset({"after", "pattern", "status", "outcome"})


class NotCompiled(Exception):
    """What the transport asked for is not something this module answers; its usual path will."""


class Relation(StrEnum):
    """The rows a ``Read`` reads, each with its arguments and the rule of who sees them."""

    USERS = "users"  # a page of every account (administrators): first, after, search
    VIEWER = "viewer"  # the reader's own account, or nothing for nobody
    USER = "user"  # an account by global id; one not seen is NotFound
    NODE_USER = "node_user"  # an account by a global id of any type; one not seen is null
    JOB = "job"  # a job by global id; one not seen is NotFound
    NODE_JOB = "node_job"  # a job by a global id of any type; one not seen is null
    MY_JOBS = "my_jobs"  # a page of the reader's jobs: first, after, status
    JOBS_OF_USER = "jobs_of_user"  # a page of the jobs of the account above: first, after, status
    OWNER = "owner"  # the owner of the job above; one not seen is NotFound
    RESULTS = "results"  # the results of the job above, in URL order: outcome


_PAGES = {Relation.USERS, Relation.MY_JOBS, Relation.JOBS_OF_USER}
_REQUIRED = {Relation.USER, Relation.JOB, Relation.OWNER}
_TABLES = {
    Relation.USERS: User,
    Relation.VIEWER: User,
    Relation.USER: User,
    Relation.NODE_USER: User,
    Relation.OWNER: User,
    Relation.JOB: FetchJob,
    Relation.NODE_JOB: FetchJob,
    Relation.MY_JOBS: FetchJob,
    Relation.JOBS_OF_USER: FetchJob,
    Relation.RESULTS: FetchResult,
}


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the row, by its model attribute's name. ``timestamp``: written as both transports
    write one (``api.db.types.utc_text``)."""

    name: str
    timestamp: bool = False


@dataclass(frozen=True, slots=True)
class Constant:
    """A fixed string (a GraphQL ``__typename``) or null (a REST page's cursor where it has none)."""

    text: str | None


@dataclass(frozen=True, slots=True)
class GlobalId:
    """The row's global id (``api.ids.to_global_id``)."""

    node_type: NodeType


@dataclass(frozen=True, slots=True)
class RowCursor:
    """The row's keyset cursor (``api.services.pagination.encode_cursor``)."""


@dataclass(frozen=True, slots=True)
class Fields:
    """An object built from the same row (a connection edge's ``node``)."""

    members: "Members"


@dataclass(frozen=True, slots=True)
class Read:
    """Rows of ``relation``, whose arguments are the request's ``slot``-th. ``members``: what each row
    gives (a page's: its connection, with ``Edges``, ``Nodes`` and ``PageInfo``)."""

    relation: Relation
    slot: int
    members: "Members"


@dataclass(frozen=True, slots=True)
class FirstOf:
    """The first of ``reads`` that finds a row (``node(id:)``, whose id names one type of several)."""

    reads: tuple[Read, ...]


@dataclass(frozen=True, slots=True)
class Edges:
    members: "Members"


@dataclass(frozen=True, slots=True)
class Nodes:
    members: "Members"


@dataclass(frozen=True, slots=True)
class PageInfo:
    members: "Members"


class Paging(StrEnum):
    """The members of a connection's ``pageInfo``."""

    HAS_NEXT = "has_next"
    HAS_PREVIOUS = "has_previous"
    START_CURSOR = "start_cursor"
    END_CURSOR = "end_cursor"
    NEXT_CURSOR = "next_cursor"  # the end cursor when there is a next page, else null (REST's)


Value = Column | Constant | GlobalId | RowCursor | Fields | Read | FirstOf | Edges | Nodes | PageInfo | Paging
Members = tuple[tuple[str, Value], ...]


@dataclass(slots=True)
class _Names:
    """The parameters a statement takes, made once each."""

    made: dict[str, Any] = field(default_factory=dict)

    def __call__(self, name: str, type_: Any) -> Any:
        if name not in self.made:
            self.made[name] = bindparam(name, type_=type_)
        return self.made[name]


class Selection:
    """One compiled read: the statements for ``answer``, each built on first use. ``answer``: the
    members of the answer's top-level object (a GraphQL response), or a read whose value is the
    answer (a REST page)."""

    def __init__(self, answer: Members | Read) -> None:
        self.answer = answer
        self.reads = tuple(_reads_in(((".", answer),) if isinstance(answer, Read) else answer))
        self.relations = frozenset(read.relation for read in self.reads)
        self._statements: dict[frozenset[str], Select[Any]] = {}

    def statement(self, absent: frozenset[str] = frozenset()) -> Select[Any]:
        """The statement for requests that leave out the optional arguments ``absent`` (parameter
        names): at most two for each optional argument the selection reads."""
        found = self._statements.get(absent)
        if found is None:
            compiler = _Compiler(absent)
            if isinstance(self.answer, Read):
                value = compiler.read(self.answer, None)
            else:
                value = compiler.object(self.answer, None)
            found = self._statements[absent] = select(cast(value, Text))
        return found


def prepared(
    selection: Selection, *, dialect: str, actor: Caller | None, arguments: Sequence[Mapping[str, Any]]
) -> tuple[Select[Any], dict[str, Any]]:
    """The statement of ``selection`` and its parameters for this request. Raises what the services
    raise for a refusal or a bad argument, and ``NotCompiled`` for what only the usual path answers."""
    if dialect != DIALECT:
        raise NotCompiled("compiled reads are PostgreSQL's")
    parameters, absent = _bound(selection, actor, arguments)
    return selection.statement(absent), parameters


def failed(exc: SQLAlchemyError) -> None:
    """A compiled statement that failed, whose request the transport's usual path answers: database
    trouble is that path's to report (it asks the database again, and its commit ends an outage),
    anything else is a bug of the compiler, logged."""
    if unavailable(exc) is None:
        logger.exception("compiled read failed; the usual path answers it")


def answered(text: str) -> str | None:
    """The answer's JSON text, or ``None`` when a row the services would refuse as missing is (the
    transport's usual path then says so)."""
    return None if MISSING in text else text


async def answer_on(
    database: Database,
    selection: Selection,
    *,
    actor: Caller | None,
    arguments: Sequence[Mapping[str, Any]],
) -> str | None:
    """``selection`` answered on ``database`` with no session: one statement, no transaction. ``None``
    wherever the transport's usual path answers instead: what is not compiled here, a refusal or a bad
    argument (the services' checks then say it, in their order), a row missing (``answered``), or a
    statement that failed (``failed``)."""
    dialect = database.engine.dialect.name
    try:
        statement, parameters = prepared(selection, dialect=dialect, actor=actor, arguments=arguments)
        text = await database.read_value(statement, parameters)
    except (DomainError, NotCompiled):
        return None
    except SQLAlchemyError as exc:
        failed(exc)
        return None
    return answered(text)


async def answer(
    session: AsyncSession,
    selection: Selection,
    *,
    actor: Caller | None,
    arguments: Sequence[Mapping[str, Any]],
) -> str | None:
    """``selection`` answered in ``session`` (``prepared``, then ``answered``)."""
    dialect = session.get_bind().dialect.name
    statement, parameters = prepared(selection, dialect=dialect, actor=actor, arguments=arguments)
    return answered(await session.scalar(statement, parameters))


def _reads_in(members: Members) -> list[Read]:
    found: list[Read] = []
    for _, value in members:
        if isinstance(value, Read):
            found.append(value)
            found.extend(_reads_in(value.members))
        elif isinstance(value, FirstOf):
            for read in value.reads:
                found.append(read)
                found.extend(_reads_in(read.members))
        elif isinstance(value, Fields | Edges | Nodes | PageInfo):
            found.extend(_reads_in(value.members))
    return found


def _bound(
    selection: Selection, actor: Caller | None, arguments: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, Any], frozenset[str]]:
    """The statement's parameters for one request (the reader's visibility, by the services' own
    checks, and each read's arguments, checked as the services check them), and the optional ones
    the request leaves out."""
    relations = selection.relations
    parameters: dict[str, Any] = {"viewer": actor.user.id if actor is not None else None}
    if Relation.USERS in relations:
        listing_visibility(actor)
    if relations & {Relation.USER, Relation.NODE_USER, Relation.OWNER, Relation.USERS}:
        parameters["users_all"] = user_visibility(actor).sees_all
    if relations & {
        Relation.JOB,
        Relation.NODE_JOB,
        Relation.MY_JOBS,
        Relation.JOBS_OF_USER,
        Relation.RESULTS,
    }:
        parameters["jobs_all"] = job_visibility(actor).sees_all
    if Relation.VIEWER in relations and actor is not None:
        user_visibility(actor)  # ``users.me``'s check: an API key without users:read is refused
    absent: set[str] = set()
    for read in selection.reads:
        for name, value in _arguments(read.relation, arguments[read.slot]).items():
            if value is None and name in OPTIONAL:
                absent.add(_parameter_name(read, name))
            else:
                parameters[_parameter_name(read, name)] = value
    return parameters, frozenset(absent)


def _parameter_name(read: Read, argument: str) -> str:
    """The statement's parameter for ``read``'s ``argument`` (``_Compiler.argument`` makes it)."""
    return f"{read.relation}_{read.slot}_{argument}"


def _arguments(relation: Relation, given: Mapping[str, Any]) -> dict[str, Any]:
    if relation in _PAGES:
        page = build(PageRequest, {"first": given.get("first"), "after": given.get("after")})
        bound: dict[str, Any] = {
            "first": page.first,
            "after": decode_cursor(page.after) if page.after is not None else None,
        }
        if relation is Relation.USERS:
            bound["pattern"] = search_pattern(given.get("search"))
        else:
            status = given.get("status")
            bound["status"] = JobStatus(status).value if status is not None else None
        return bound
    if relation in (Relation.USER, Relation.JOB):
        key = given["id"]  # a global id (GraphQL's), or the key itself (REST's)
        node_type = NodeType.USER if relation is Relation.USER else NodeType.FETCH_JOB
        return {"id": key if isinstance(key, uuid.UUID) else node_key(key, node_type)}
    if relation in (Relation.NODE_USER, Relation.NODE_JOB):
        decoded = from_global_id(given["id"])
        if decoded is not None and decoded[0] is NodeType.API_KEY:
            raise NotCompiled("API keys are read by their service")
        wanted = NodeType.USER if relation is Relation.NODE_USER else NodeType.FETCH_JOB
        return {"id": decoded[1] if decoded is not None and decoded[0] is wanted else None}
    if relation is Relation.RESULTS:
        outcome = given.get("outcome")
        return {"outcome": Outcome(outcome).value if outcome is not None else None}
    return {}


def _columns_of(members: Members) -> set[str]:
    """The columns ``members`` read off their own row (a nested read reads its own)."""
    names: set[str] = set()
    for _, value in members:
        if isinstance(value, Column):
            names.add(value.name)
        elif isinstance(value, Fields | Edges | Nodes):
            names |= _columns_of(value.members)
    return names


def _json_object(pairs: list[tuple[str, ColumnElement[Any]]]) -> ColumnElement[Any]:
    if len(pairs) > MAX_MEMBERS:
        raise NotCompiled(f"more than {MAX_MEMBERS} fields in one object")
    arguments: list[ColumnElement[Any]] = []
    for key, value in pairs:
        arguments += [_text(key), value]
    return func.json_build_object(*arguments)


def _text(value: str | None) -> ColumnElement[Any]:
    """A string constant written into the statement (names and type names only), or null."""
    if value is None:
        return literal_column("NULL", Text)
    return literal_column("'" + value.replace("'", "''") + "'", Text)


def _json_list(
    element: ColumnElement[Any], order: ColumnElement[Any], *, where: Any = None
) -> ColumnElement[Any]:
    aggregated: ColumnElement[Any] = func.json_agg(aggregate_order_by(element, order))
    if where is not None:
        aggregated = aggregated.filter(where)
    return func.coalesce(aggregated, literal_column("'[]'::json"))


def _iso_time(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A UTC timestamp as ``api.db.types.utc_text`` writes it (microseconds only when there are any)."""
    utc = func.timezone(literal_column("'UTC'"), column)
    seconds = func.to_char(utc, literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS'"), type_=Text)
    fraction = func.to_char(utc, literal_column("'.US'"), type_=Text)
    microseconds = cast(func.date_part(literal_column("'microseconds'"), column), Integer)
    whole = microseconds % literal_column("1000000") == literal_column("0")
    return seconds.concat(case((whole, _text("")), else_=fraction)).concat(_text("Z"))


def _base64url(data: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.translate(
        func.encode(data, literal_column("'base64'")), literal_column("'+/'"), literal_column("'-_'")
    )


def _global_id(node_type: NodeType, key: ColumnElement[Any]) -> ColumnElement[Any]:
    """``api.ids.to_global_id`` in SQL. Its URL-safe alphabet differs from plain base64 only in the
    sextets 62 and 63, and the text it encodes (letters, ``:``, hex digits, ``-``) never forms them:
    ASCII bytes are below 0x80, so only a byte's last six bits make a sextet alone, and those are
    0x3E or 0x3F only for ``>?~`` and DEL. So plain ``encode`` is the same, without the
    ``translate`` that cost PostgreSQL a microsecond an id; nor is the text long enough for
    ``encode``'s line breaks (every 76 characters)."""
    prefix = f"{node_type}:"
    if not node_type.value.isalpha() or not node_type.value.isascii() or len(prefix) + 36 >= 57:
        raise NotCompiled(f"a global id of {node_type} is not plain base64 of it")
    prefixed = _text(prefix) + cast(key, Text)
    return func.encode(func.convert_to(prefixed, literal_column("'UTF8'")), literal_column("'base64'"))


def _cursor(key: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.rtrim(_base64url(func.uuid_send(key)), literal_column("'='"))


class _Compiler:
    """Builds one statement of a ``Selection``: the one for requests that leave out ``absent``."""

    def __init__(self, absent: frozenset[str]) -> None:
        self.parameter = _Names()
        self.absent = absent

    def object(self, members: Members, row: FromClause | None) -> ColumnElement[Any]:
        return _json_object([(key, self.value(value, row)) for key, value in members])

    def value(self, value: Value, row: FromClause | None) -> ColumnElement[Any]:
        if isinstance(value, Constant):
            return _text(value.text)
        if isinstance(value, Read):
            return self.read(value, row)
        if isinstance(value, FirstOf):
            return func.coalesce(*(self.read(read, row) for read in value.reads))
        if row is None:
            raise NotCompiled(f"{value!r} outside a row")
        if isinstance(value, Column):
            column = row.c[value.name]
            return _iso_time(column) if value.timestamp else column
        if isinstance(value, GlobalId):
            return _global_id(value.node_type, row.c.id)
        if isinstance(value, RowCursor):
            return _cursor(row.c.id)
        if isinstance(value, Fields):
            return self.object(value.members, row)
        raise NotCompiled(f"{value!r} is not a row's value")

    def argument(self, read: Read, name: str, type_: Any) -> Any:
        """The parameter of ``read``'s argument ``name`` (``_bound`` names its value alike)."""
        return self.parameter(_parameter_name(read, name), type_)

    def condition(
        self, read: Read, name: str, type_: Any, holds: Callable[[Any], ColumnElement[bool]]
    ) -> list[ColumnElement[bool]]:
        """``holds`` of the parameter of ``read``'s optional argument ``name``: none when the request
        leaves it out."""
        if _parameter_name(read, name) in self.absent:
            return []
        return [holds(self.argument(read, name, type_))]

    def read(self, read: Read, parent: FromClause | None) -> ColumnElement[Any]:
        relation = read.relation
        table = _TABLES[relation].__table__.alias()
        given = partial(self.argument, read)
        users = (self.parameter("users_all", Boolean), self.parameter("viewer", Uuid))
        jobs = (self.parameter("jobs_all", Boolean), self.parameter("viewer", Uuid))
        conditions: list[ColumnElement[bool]] = []
        if relation is Relation.VIEWER:
            conditions.append(table.c.id == self.parameter("viewer", Uuid))
        elif relation in (Relation.USER, Relation.NODE_USER):
            conditions += [table.c.id == given("id", Uuid), visible_user(table.c, users)]
        elif relation in (Relation.JOB, Relation.NODE_JOB):
            conditions += [table.c.id == given("id", Uuid), visible_job(table.c, jobs)]
        elif relation is Relation.OWNER:
            assert parent is not None
            conditions += [table.c.id == parent.c.owner_id, visible_user(table.c, users)]
        elif relation is Relation.RESULTS:
            assert parent is not None
            conditions += [table.c.job_id == parent.c.id, visible_job(parent.c, jobs)]
            conditions += self.condition(read, "outcome", String, lambda outcome: table.c.outcome == outcome)
            answer = _json_list(self.object(read.members, table), table.c.position)
            return select(answer).where(*conditions).correlate(parent).scalar_subquery()
        else:
            return self.page(read, table, parent, jobs)
        found = select(self.object(read.members, table)).where(*conditions)
        if parent is not None:
            found = found.correlate(parent)
        subquery: ColumnElement[Any] = found.scalar_subquery()
        if relation in _REQUIRED:
            subquery = func.coalesce(subquery, literal_column(f"'\"{MISSING}\"'::json"))
        return subquery

    def page(
        self,
        read: Read,
        table: FromClause,
        parent: FromClause | None,
        jobs: tuple[ColumnElement[bool], ColumnElement[Any]],
    ) -> ColumnElement[Any]:
        relation = read.relation
        first = self.argument(read, "first", Integer)
        # Users oldest first, jobs newest first, as the services list them (ids sort by creation).
        newest_first = relation is not Relation.USERS
        order = table.c.id.desc() if newest_first else table.c.id
        after = (lambda key: table.c.id < key) if newest_first else (lambda key: table.c.id > key)
        conditions = self.condition(read, "after", Uuid, after)
        if relation is Relation.USERS:
            conditions += self.condition(read, "pattern", String, partial(matches_search, table.c))
        else:
            owner = self.parameter("viewer", Uuid) if relation is Relation.MY_JOBS else parent.c.id  # type: ignore[union-attr]
            conditions += [table.c.owner_id == owner, visible_job(table.c, jobs)]
            conditions += self.condition(read, "status", String, lambda status: table.c.status == status)
        rank = func.row_number().over(order_by=order).label("rank")
        wanted = _columns_of(read.members) | {"id"} | ({"owner_id"} if "owner_id" in table.c else set())
        columns = [table.c[name] for name in sorted(wanted)]
        rows = select(*columns, rank).where(*conditions).order_by(order).limit(first + literal_column("1"))
        if parent is not None:
            rows = rows.correlate(parent)
        page = rows.subquery()
        on_page = page.c.rank <= first
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for key, value in read.members:
            if isinstance(value, Edges | Nodes):
                element = self.object(value.members, page)
                pairs.append((key, _json_list(element, page.c.rank, where=on_page)))
            elif isinstance(value, PageInfo):
                pairs.append(
                    (
                        key,
                        _json_object(
                            [(k, self.paging(v, page, first, newest_first)) for k, v in value.members]
                        ),
                    )
                )
            elif value is Paging.NEXT_CURSOR:
                pairs.append((key, self.paging(value, page, first, newest_first)))
            else:
                pairs.append((key, self.value(value, None)))
        # Grouped by the empty set: one row whatever the page holds, aggregates or not.
        return select(_json_object(pairs)).select_from(page).group_by(literal_column("()")).scalar_subquery()

    def paging(
        self, value: Value, page: FromClause, first: ColumnElement[Any], newest_first: bool
    ) -> ColumnElement[Any]:
        """A member of ``pageInfo`` (or REST's ``next_cursor``); ids sort by creation, so the page's
        first and last rows are its least and greatest ids, the other way round when newest first."""
        on_page = page.c.rank <= first
        if value is Paging.HAS_NEXT:
            return func.count() > first
        if value is Paging.HAS_PREVIOUS:
            return false()
        if value in (Paging.START_CURSOR, Paging.END_CURSOR):
            edge = func.min if (value is Paging.START_CURSOR) != newest_first else func.max
            return _cursor(cast(edge(cast(page.c.id, Text)).filter(on_page), Uuid))
        if value is Paging.NEXT_CURSOR:
            end = self.paging(Paging.END_CURSOR, page, first, newest_first)
            return case((self.paging(Paging.HAS_NEXT, page, first, newest_first), end), else_=_text(None))
        if isinstance(value, Constant):
            return _text(value.text)
        raise NotCompiled(f"{value!r} is not a page's")
