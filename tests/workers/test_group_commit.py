"""Group commit (the reply sender's outcomes): what arrives during a write goes out together in the next one."""

from __future__ import annotations

import threading

import pytest

from bot.workers.group_commit import GroupCommit


class SlowWrites:
    """A write function whose first call blocks until released, recording each batch."""

    def __init__(self, fail_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_first = fail_first

    def __call__(self, batch: list[int]) -> None:
        first = not self.batches and not self.started.is_set()
        if first:
            self.started.set()
            assert self.release.wait(10)
            if self.fail_first:
                raise RuntimeError("database is locked")
        self.batches.append(batch)


def in_thread(target, *args) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(*args)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def test_items_added_during_a_write_are_written_together_by_the_writer():
    writes = SlowWrites()
    group = GroupCommit(writes)
    writer, errors = in_thread(group.add, 1)
    assert writes.started.wait(10)
    for item in (2, 3, 4):
        group.add(item)  # returns at once: the writer in progress takes them
    assert writes.batches == []
    writes.release.set()
    writer.join(10)
    assert not writer.is_alive() and errors == []
    assert writes.batches == [[1], [2, 3, 4]]


def test_flush_returns_once_everything_added_is_written():
    writes = SlowWrites()
    group = GroupCommit(writes)
    writer, _ = in_thread(group.add, 1)
    assert writes.started.wait(10)
    group.add(2)
    flusher, errors = in_thread(group.flush)
    flusher.join(0.2)
    assert flusher.is_alive()  # waiting for the write under way
    writes.release.set()
    flusher.join(10)
    writer.join(10)
    assert errors == [] and writes.batches == [[1], [2]]
    group.flush()  # nothing waiting: returns at once
    assert writes.batches == [[1], [2]]


def test_a_failed_write_raises_in_its_thread_and_what_came_meanwhile_goes_with_the_next_flush():
    writes = SlowWrites(fail_first=True)
    group = GroupCommit(writes)
    writer, errors = in_thread(group.add, 1)
    assert writes.started.wait(10)
    group.add(2)
    writes.release.set()
    writer.join(10)
    assert [str(e) for e in errors] == ["database is locked"]
    assert writes.batches == []  # item 1 is dropped: its caller's recovery applies (the reply's lease)
    group.flush()
    assert writes.batches == [[2]]


def test_a_write_in_the_calling_thread_raises_there_and_is_not_retried():
    calls = []

    def broken(batch):
        calls.append(batch)
        raise ValueError("no")

    group = GroupCommit(broken)
    with pytest.raises(ValueError):
        group.add(1)
    group.flush()
    assert calls == [[1]]


def test_many_threads_adding_at_once_lose_nothing():
    written: list[int] = []
    group = GroupCommit(written.extend)
    threads = [threading.Thread(target=lambda k=k: [group.add(k * 1000 + i) for i in range(200)]) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    group.flush()
    assert sorted(written) == sorted(k * 1000 + i for k in range(8) for i in range(200))
