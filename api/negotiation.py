"""Content negotiation (RFC 9110 §12): which of the forms we offer a client's ``Accept`` or
``Accept-Encoding`` prefers.

A header is read as a list of ranges with weights (``q``, 1 when not given, 0 meaning "not this");
the form chosen is the one whose most specific matching range weighs most, ties going to the
order we offer them in, so our default wins when the client does not care. Parsed headers are
remembered: a client sends the same few all the time.
"""

from collections.abc import Sequence
from functools import lru_cache

Ranges = tuple[tuple[str, float], ...]


@lru_cache(maxsize=256)
def _ranges(header: str) -> Ranges:
    """``(range, weight)`` for each element of the header, lower-cased, parameters other than ``q``
    dropped (we offer no form that parameters would tell apart)."""
    found = []
    for element in header.split(","):
        name, *parameters = (part.strip() for part in element.split(";"))
        if not name:
            continue
        weight = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    weight = 0.0  # a weight we cannot read is no preference for this range
        found.append((name.lower(), weight))
    return tuple(found)


def _media_weight(ranges: Ranges, offered: str) -> float:
    """The weight of the most specific range that matches ``offered``: ``type/subtype``, then
    ``type/*``, then ``*/*``; none matching is 0."""
    kind = offered.split("/", 1)[0]
    best_rank, weight = -1, 0.0
    for name, q in ranges:
        rank = 2 if name == offered else 1 if name == f"{kind}/*" else 0 if name == "*/*" else -1
        if rank > best_rank:
            best_rank, weight = rank, q
    return weight


def preferred_media(accept: str | None, offered: Sequence[str]) -> str | None:
    """The media type of ``offered`` that ``accept`` prefers; the first one when the header is
    missing or empty, ``None`` when it refuses them all (a 406, or the default, for the caller)."""
    if not accept:
        return offered[0]
    ranges = _ranges(accept)
    weights = [_media_weight(ranges, media) for media in offered]
    best = max(weights)
    return offered[weights.index(best)] if best > 0 else None


def preferred_coding(accept_encoding: str | None, offered: Sequence[str]) -> str | None:
    """The content coding of ``offered`` that ``accept_encoding`` prefers, or ``None`` for the
    identity (no header, or none of ours wanted). ``*`` stands for any coding not named."""
    if not accept_encoding:
        return None
    ranges = dict(_ranges(accept_encoding))
    any_other = ranges.get("*", 0.0)
    weights = [ranges.get(coding, any_other) for coding in offered]
    best = max(weights, default=0.0)
    return offered[weights.index(best)] if best > 0 else None
