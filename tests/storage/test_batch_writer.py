"""Group commit with waiting callers (bot/storage/batch_writer.py): concurrent items are written together, each
caller gets its own item's result only after that write, and a failure stays with the item that caused it."""

from __future__ import annotations

import threading
import time

import pytest

from bot.storage.batch_writer import BatchWriter

TIMEOUT = 10  # seconds a step may take before the test fails (nothing waits this long when the code is right)


class Recorder:
    """A write_many / write_one pair that records every batch; the first write blocks until `gate` opens."""

    def __init__(self, *, bad: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.gate = threading.Event()
        self.writing = threading.Event()  # the first write has begun (and is held at the gate)
        self.batches: list[list[int]] = []
        self.alone: list[int] = []
        self.bad = bad
        self._first = True

    def _hold(self) -> None:
        if self._first:
            self._first = False
            self.writing.set()
            assert self.gate.wait(TIMEOUT)

    def many(self, items: list[int]) -> list[str]:
        self._hold()
        self.batches.append(list(items))
        if self.bad & set(items):
            raise RuntimeError("one item of this batch is bad")
        return [f"done:{i}" for i in items]

    def one(self, item: int) -> str:
        self._hold()
        self.alone.append(item)
        if item in self.bad:
            raise ValueError(f"bad item {item}")
        return f"done:{item}"


def submit_all(writer: BatchWriter, recorder: Recorder, items: list[int]) -> dict[int, object]:
    """Submit the first item, wait until the others queue behind its (held) write, then let it go."""
    results: dict[int, object] = {}

    def run(item: int) -> None:
        try:
            results[item] = writer.submit(item)
        except Exception as e:
            results[item] = e

    first = threading.Thread(target=run, args=(items[0],))
    first.start()
    assert recorder.writing.wait(TIMEOUT)  # the first write is under way (and held)
    others = [threading.Thread(target=run, args=(i,)) for i in items[1:]]
    for t in others:
        t.start()
    assert writer.wait_queued(len(items) - 1, TIMEOUT)
    recorder.gate.set()
    for t in [first, *others]:
        t.join(TIMEOUT)
        assert not t.is_alive()
    return results


def test_items_that_arrive_during_a_write_are_written_together_each_caller_gets_its_own_result():
    recorder = Recorder()
    writer = BatchWriter(recorder.many, recorder.one)
    results = submit_all(writer, recorder, list(range(9)))
    assert results == {i: f"done:{i}" for i in range(9)}
    assert recorder.alone == [0]  # the first, alone (nothing else was waiting)
    assert recorder.batches == [list(range(1, 9))]  # the eight that gathered meanwhile: one write


def test_a_batch_is_capped_and_the_rest_follows_in_the_next_write():
    recorder = Recorder()
    writer = BatchWriter(recorder.many, recorder.one, max_batch=3)
    results = submit_all(writer, recorder, list(range(8)))
    assert results == {i: f"done:{i}" for i in range(8)}
    # 7 gathered: written 3, 3, then the last alone (a batch of one goes through write_one); each exactly once
    assert recorder.batches == [[1, 2, 3], [4, 5, 6]]
    assert recorder.alone == [0, 7]


def test_a_bad_item_fails_only_its_own_caller_the_others_are_written_again_alone():
    recorder = Recorder(bad={5})
    writer = BatchWriter(recorder.many, recorder.one)
    results = submit_all(writer, recorder, list(range(8)))
    assert isinstance(results.pop(5), ValueError)
    assert results == {i: f"done:{i}" for i in range(8) if i != 5}
    assert sorted(recorder.alone) == list(range(8))  # 0 first; 1..7 again one by one after their batch failed


def test_a_failed_write_of_one_raises_in_its_caller_and_the_writer_goes_on():
    recorder = Recorder(bad={1})
    recorder.gate.set()
    writer = BatchWriter(recorder.many, recorder.one)
    with pytest.raises(ValueError, match="bad item 1"):
        writer.submit(1)
    assert writer.submit(2) == "done:2"
    assert writer.queued == 0


@pytest.mark.parametrize("max_batch", [1, 2, 5, 64])
@pytest.mark.parametrize("bad", [None, 13])
def test_under_load_every_item_is_written_exactly_once_and_every_caller_returns(max_batch, bad):
    """Many callers, writes of varying length, maybe a bad item among them: nobody hangs (each waits on a lock the
    writer releases once per wake-up), nobody gets another's result, no item is written twice, however leadership
    is handed over; one batch is written at a time (after a failed batch its items are written again by their own
    callers, beside the leader)."""
    written: list[int] = []
    lock = threading.Lock()
    in_flight, most = [0], [0]

    def write(items: list[int]) -> list[str]:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            time.sleep(0.0005 * (items[0] % 3))
            if bad in items:
                raise RuntimeError("a bad item in this batch")
            with lock:
                written.extend(items)
            return [f"done:{i}" for i in items]
        finally:
            with lock:
                in_flight[0] -= 1

    writer = BatchWriter(write, lambda item: write([item])[0], max_batch=max_batch)
    results: dict[int, object] = {}

    def run(item: int) -> None:
        try:
            results[item] = writer.submit(item)
        except RuntimeError as e:
            results[item] = e

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(200)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        assert not t.is_alive()
    if bad is not None:
        assert isinstance(results.pop(bad), RuntimeError)
    assert results == {i: f"done:{i}" for i in range(200) if i != bad}
    assert sorted(written) == [i for i in range(200) if i != bad]  # once each, the bad one never
    if bad is None:
        assert most[0] == 1
    assert writer.queued == 0
