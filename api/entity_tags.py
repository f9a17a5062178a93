"""Entity tags (RFC 9110 §8.8.3) as the HTTP layers share them.

A tag names one representation of a resource's state. The layers that change a representation
(``api.msgpack_bodies``, ``api.compression``) each append their suffix to a tag going out and take it
off the tags a client sends back (``If-None-Match``, ``If-Match``), so the layer inside compares
tags of the form it made, and a cached gzip of the MessagePack form never passes for the plain
JSON one.
"""

from collections.abc import Iterable

from starlette.types import Scope

Headers = list[tuple[bytes, bytes]]


def parse(header: bytes) -> list[tuple[bool, bytes]]:
    """``(weak, opaque)`` for each tag of an ``If-Match`` or ``If-None-Match`` list, ``opaque``
    without its quotes; a ``*`` is ``(False, b"*")``. Elements that are no tag are skipped."""
    tags = []
    for element in header.split(b","):
        element = element.strip()
        weak = element.startswith(b"W/")
        if weak:
            element = element[2:]
        if element == b"*":
            if not weak:  # W/* is no wildcard, and no tag either
                tags.append((False, element))
        # A tag named "*" (quoted) is no wildcard, and no answer of ours has it: it matches nothing.
        elif len(element) >= 2 and element.startswith(b'"') and element.endswith(b'"') and element != b'"*"':
            tags.append((weak, element[1:-1]))
    return tags


def quoted(opaque: bytes, weak: bool = False) -> bytes:
    return (b'W/"' if weak else b'"') + opaque + b'"'


def with_suffix(tag: bytes, suffix: bytes) -> bytes:
    """``"abc"`` as ``"abc-gzip"`` (the weak mark kept)."""
    return tag[:-1] + suffix + b'"' if tag.endswith(b'"') else tag


def header(headers: Headers, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def replaced(headers: Headers, name: bytes, value: bytes | None) -> Headers:
    """``headers`` with ``name`` set to ``value`` (removed for ``None``)."""
    kept = [(key, old) for key, old in headers if key != name]
    return kept if value is None else [*kept, (name, value)]


def vary(headers: Headers, field: bytes) -> Headers:
    """``headers`` whose ``Vary`` names ``field`` too."""
    given = header(headers, b"vary")
    if given is None:
        return [*headers, (b"vary", field)]
    named = {part.strip().lower() for part in given.split(b",")}
    if field.lower() in named or b"*" in named:
        return headers
    return replaced(headers, b"vary", given + b", " + field)


def unsuffixed(scope: Scope, suffix: bytes, keep_plain: bool) -> tuple[Scope, set[bytes]]:
    """The request with ``suffix`` taken off the tags of its conditional headers, and the opaque
    parts that carried it. ``keep_plain``: whether an ``If-None-Match`` tag without the suffix stays
    (it may name a representation this layer left alone, such as a body too small to compress) or
    goes (it names another form than the one this request will get)."""
    carried: set[bytes] = set()
    rewritten: Headers = []
    changed = False
    for name, value in scope["headers"]:
        if name in (b"if-none-match", b"if-match"):
            # If-Match always keeps them: dropping its last tag would make a conditional write a plain one.
            keep = keep_plain or name == b"if-match"
            tags = []
            for weak, opaque in parse(value):
                if opaque == b"*":
                    tags.append(b"*")
                elif opaque.endswith(suffix):
                    carried.add(opaque[: -len(suffix)])
                    tags.append(quoted(opaque[: -len(suffix)], weak))
                elif keep:
                    tags.append(quoted(opaque, weak))
            changed = True
            if tags:
                value = b", ".join(tags)
            elif keep:
                pass  # no tag we could read: left as sent, for the route to refuse (412)
            else:
                continue  # no tag left: one that matches nothing, as the client's matched nothing here
        rewritten.append((name, value))
    return ({**scope, "headers": rewritten} if changed else scope), carried


def matches(tags: Iterable[tuple[bool, bytes]], opaque: bytes) -> bool:
    """The weak comparison ``If-None-Match`` uses: the opaque parts equal, weakness ignored."""
    return any(candidate in (b"*", opaque) for _, candidate in tags)
