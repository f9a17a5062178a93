"""Reading ``Accept`` and ``Accept-Encoding`` (RFC 9110 §12.5): weights, specificity, refusals."""

import pytest

from api.negotiation import preferred_coding, preferred_media

OFFERED = ("application/json", "text/csv", "application/x-ndjson")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),  # a tie goes to the order offered: our default
        ("text/csv", "text/csv"),
        ("TEXT/CSV; charset=utf-8", "text/csv"),
        ("application/json;q=0.4, text/csv;q=0.8", "text/csv"),
        ("text/*, application/json;q=0.1", "text/csv"),
        ("application/*;q=0.5, application/x-ndjson", "application/x-ndjson"),
        ("*/*;q=0.1, application/json;q=0", "text/csv"),  # the specific 0 refuses JSON alone
        ("text/html", None),
        ("text/csv;q=0", None),
        ("text/csv;q=oops, application/json;q=0.2", "application/json"),  # an unreadable weight is 0
        (" , ,text/csv", "text/csv"),
    ],
)
def test_preferred_media(accept: str | None, chosen: str | None) -> None:
    assert preferred_media(accept, OFFERED) == chosen


@pytest.mark.parametrize(
    ("accept_encoding", "chosen"),
    [
        (None, None),
        ("identity", None),
        ("gzip", "gzip"),
        ("gzip;q=0.5, zstd", "zstd"),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", "br"),
        ("*", "zstd"),
        ("*, zstd;q=0", "br"),
        ("gzip;q=0", None),
    ],
)
def test_preferred_coding(accept_encoding: str | None, chosen: str | None) -> None:
    assert preferred_coding(accept_encoding, ("zstd", "br", "gzip")) == chosen
