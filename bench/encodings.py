"""What the answer's form costs: CPU per request of one REST read (a page of 50 users, about
10 KB of JSON) answered as plain JSON, gzip, MessagePack and both, and a 304 revalidation, in one
process over the bench database, so the figures are the app's own work (no network, no server).

gzip's share is its extra CPU over the plain answer, as a fraction of the plain answer's whole
cost; the budget is 25 % (``BUDGET``), which it must stay under for the default level and
threshold (``api.compression``). Run alone: the two cores are shared.
"""

import argparse
import asyncio
import os
import time

import httpx2

from api.app import create_app
from api.security import create_access_token
from bench.reads import DEFAULT_URL, SECRET, _admin_id, prepare

BUDGET = 0.25
PATH = "/api/v1/users?limit=50"
FORMS = {
    "json": {"Accept-Encoding": "identity"},
    "gzip": {"Accept-Encoding": "gzip"},
    "msgpack": {"Accept-Encoding": "identity", "Accept": "application/msgpack"},
    "msgpack+gzip": {"Accept-Encoding": "gzip", "Accept": "application/msgpack"},
}


async def _cpu_per_request(
    client: httpx2.AsyncClient, headers: dict[str, str], count: int
) -> tuple[float, int]:
    """Microseconds of this process's CPU per request, and the bytes of one answer as sent."""
    for _ in range(20):  # warm: the sign-in cache, the compiled read, the allocator
        await client.get(PATH, headers=headers)
    started = time.process_time()
    for _ in range(count):
        async with client.stream("GET", PATH, headers=headers) as response:
            sent = b"".join([chunk async for chunk in response.aiter_raw()])
    return (time.process_time() - started) / count * 1e6, len(sent)


async def run(url: str, count: int, rounds: int) -> None:
    settings = await prepare(url)
    auth = {"Authorization": f"Bearer {create_access_token(settings, await _admin_id(url)).token}"}
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://bench") as client:
            tag = (await client.get(PATH, headers={**auth, **FORMS["json"]})).headers["etag"]
            forms = {**FORMS, "304": {**FORMS["json"], "If-None-Match": tag}}
            best: dict[str, tuple[float, int]] = {}
            for _ in range(rounds):  # interleaved rounds, the best of each: the least disturbed
                for name, headers in forms.items():
                    measured = await _cpu_per_request(client, {**auth, **headers}, count)
                    best[name] = min(best.get(name, measured), measured)
    plain = best["json"][0]
    print(f"bench.encodings: GET {PATH}, {count} requests x {rounds} rounds, CPU per request in-process")
    for name, (micros, size) in best.items():
        print(f"  {name:13} {micros:8.0f} µs  {micros / plain:5.2f}x json  {size:7,} bytes sent")
    share = (best["gzip"][0] - plain) / plain
    verdict = "within" if share < BUDGET else "OVER"
    print(f"  gzip's share of a read's CPU: {share:.1%} ({verdict} the {BUDGET:.0%} budget)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("SWITCHBOARD_SECRET_KEY", SECRET)
    url = os.environ.get("SWITCHBOARD_BENCH_POSTGRES_URL", DEFAULT_URL)
    asyncio.run(run(url, args.requests, args.rounds))


if __name__ == "__main__":
    main()
