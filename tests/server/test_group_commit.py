"""The group-commit writer: items of concurrent requests are handled together, each request gets
its own answer, only after its batch was handled, and closing handles what was submitted."""

from __future__ import annotations

import asyncio
import threading

import pytest

from labledger.server.group_commit import GroupCommit


class Recorder:
    """A ``handle`` that doubles its items, notes its batches, and holds the first batch until
    released (so the next items are known to queue behind it)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: list[int]) -> list[int | Exception]:
        if not self.batches:
            self.first_started.set()
            assert self.release.wait(30)
        self.batches.append(list(items))
        return [ValueError(f"no {i}") if i < 0 else i * 2 for i in items]


async def _wait_for(condition: threading.Event) -> None:
    assert await asyncio.to_thread(condition.wait, 30)


def test_items_waiting_together_are_handled_in_one_batch_each_with_its_answer() -> None:
    recorder = Recorder()
    writer: GroupCommit[int, int] = GroupCommit(recorder, name="test-writer", linger=0)

    async def scenario() -> list[int]:
        first = asyncio.create_task(writer.submit(1))
        await _wait_for(recorder.first_started)
        rest = [asyncio.create_task(writer.submit(i)) for i in range(2, 12)]
        await asyncio.sleep(0)  # every submit has queued its item
        assert not first.done()  # answered only once its batch is handled
        recorder.release.set()
        return await asyncio.gather(first, *rest)

    try:
        answers = asyncio.run(scenario())
    finally:
        writer.close()
    assert answers == [i * 2 for i in range(1, 12)]
    assert recorder.batches == [[1], list(range(2, 12))]


def test_an_item_that_fails_fails_only_its_own_request() -> None:
    recorder = Recorder()
    recorder.release.set()
    writer: GroupCommit[int, int] = GroupCommit(recorder, name="test-writer")

    async def scenario() -> list[object]:
        return await asyncio.gather(*(writer.submit(i) for i in (1, -1, 3)), return_exceptions=True)

    try:
        first, failed, third = asyncio.run(scenario())
    finally:
        writer.close()
    assert (first, third) == (2, 6)
    assert isinstance(failed, ValueError) and str(failed) == "no -1"


def test_a_failing_handle_fails_every_request_of_its_batch() -> None:
    def broken(items: list[int]) -> list[int | Exception]:
        raise RuntimeError("the database is gone")

    writer: GroupCommit[int, int] = GroupCommit(broken, name="test-writer")

    async def scenario() -> list[object]:
        return await asyncio.gather(*(writer.submit(i) for i in range(3)), return_exceptions=True)

    try:
        answers = asyncio.run(scenario())
    finally:
        writer.close()
    assert [str(a) for a in answers] == ["the database is gone"] * 3


def test_close_handles_what_was_submitted_and_a_later_submit_starts_again() -> None:
    recorder = Recorder()
    writer: GroupCommit[int, int] = GroupCommit(recorder, name="test-writer")

    async def submit_then_close() -> list[int]:
        first = asyncio.create_task(writer.submit(1))
        await _wait_for(recorder.first_started)
        second = asyncio.create_task(writer.submit(2))
        await asyncio.sleep(0)
        closing = asyncio.create_task(asyncio.to_thread(writer.close))
        recorder.release.set()
        await closing
        return [await first, await second]

    assert asyncio.run(submit_then_close()) == [2, 4]
    assert asyncio.run(writer.submit(5)) == 10
    writer.close()
    assert [i for batch in recorder.batches for i in batch] == [1, 2, 5]


@pytest.mark.parametrize("linger", [0.0, 0.001])
def test_one_item_at_a_time_is_answered(linger: float) -> None:
    recorder = Recorder()
    recorder.release.set()
    writer: GroupCommit[int, int] = GroupCommit(recorder, name="test-writer", linger=linger)

    async def one_by_one() -> list[int]:
        return [await writer.submit(i) for i in range(20)]

    try:
        assert asyncio.run(one_by_one()) == [i * 2 for i in range(20)]
    finally:
        writer.close()
    assert all(len(batch) == 1 for batch in recorder.batches)
