"""The heap after a burst of socket closes: collected and trimmed once, when the closes have settled."""

import asyncio
import gc
import weakref

from api.memory import Trimmer
from tests.waiting import until_true


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


async def test_a_burst_of_releases_collects_and_trims_once_it_has_settled() -> None:
    trims: list[int] = []
    times: list[float] = []

    def trim(pad: int) -> int:
        trims.append(pad)
        times.append(trimmer._last)  # when this run began: the gap is counted from there
        return 1

    trimmer = Trimmer(trim=trim, settle=0.5, min_gap=2.0)
    gc.disable()
    try:
        node = _Node()
        gone = weakref.ref(node)
        del node
        for _ in range(5):  # five sockets closing one after another
            trimmer.released()
            await asyncio.sleep(0.01)
        assert gone() is not None  # not while closes still come
        assert trims == []
        await until_true(lambda: trimmer.trims == 1, within=5, what="the collection after the burst")
    finally:
        gc.enable()
    assert gone() is None
    assert (trims, trimmer.trims) == ([0], 1)

    trimmer.released()  # the next burst, soon after: it waits out the gap since the last run
    await until_true(lambda: trimmer.trims == 2, within=5, what="the collection after the gap")
    assert times[1] - times[0] >= 2.0 - 0.01  # the loop may fire a timer a clock tick early
