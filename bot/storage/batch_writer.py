"""Group commit for callers that must wait for their own write: items submitted by concurrent threads are written
in one transaction, and each caller returns only once its item is durable, with its own result.

Why: before the ack every DM needs its record committed; one transaction per DM made the request threads queue for
the single writer (SQLite) or for a commit each (PostgreSQL), and a thread holding the write lock had to win the
GIL back from fifteen others after every statement. Here one thread writes for all who arrived meanwhile and the
others wait on a lock of their own, without the GIL.

Leadership is handed over batch by batch: the thread that finds no write under way writes what is waiting (its
own item included) and, if more arrived meanwhile, wakes the oldest of those to write the next batch, so that no
request is held for other requests' writes longer than one batch. A failed batch of several items is written
again item by item, each by its own thread, so that one bad item fails only its own caller.

Nothing here writes: bot/storage/dm_view.py reads concurrent requests' DM views through it, one statement a batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("error", "failed", "item", "lead", "ready", "result")

    def __init__(self, item: T) -> None:
        self.item = item
        # A lock taken now and released by the writer, not an Event: waiting on a held lock and releasing it is
        # done in C, without Condition's Python code on either side (that was 8 % of the DM path's samples: two
        # hand-offs per DM). Released once per wake-up: as the next lead, then with its own batch.
        self.ready = threading.Lock()
        self.ready.acquire()
        self.lead = False  # woken to write the next batch rather than with a result
        self.result: R | None = None
        self.failed = False  # its batch failed: write it alone
        self.error: Exception | None = None  # it failed alone


class BatchWriter(Generic[T, R]):
    def __init__(
        self, write_many: Callable[[list[T]], list[R]], write_one: Callable[[T], R], *, max_batch: int = 64
    ) -> None:
        self._write_many = write_many
        self._write_one = write_one
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queued = threading.Condition(self._lock)  # notified as items queue (wait_queued)
        self._waiting: list[_Slot[T, R]] = []
        self._writing = False

    @property
    def queued(self) -> int:
        """How many items wait for the write under way (to be written in the next batch)."""
        with self._lock:
            return len(self._waiting)

    def wait_queued(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` items wait behind the write under way (tests use it to make a batch)."""
        with self._queued:
            return self._queued.wait_for(lambda: len(self._waiting) >= count, timeout)

    def submit(self, item: T) -> R:
        """Write `item` (with whatever else is waiting) and return its result once it is committed."""
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._waiting.append(slot)
            self._queued.notify_all()
            lead = not self._writing
            self._writing = True
        if not lead:
            slot.ready.acquire()
            if not slot.lead:
                return self._outcome(slot)
        self._write_batch()
        return self._outcome(slot)

    def _outcome(self, slot: _Slot[T, R]) -> R:
        if slot.error is not None:
            raise slot.error
        if slot.failed:
            return self._write_one(slot.item)
        return slot.result  # type: ignore[return-value]

    def _write_batch(self) -> None:
        # A batch of one is written here too, not by its caller after the hand-over: while it is written, the
        # next callers gather into a batch instead of each finding no write under way.
        with self._lock:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
        try:
            if len(batch) == 1:
                batch[0].result = self._write_one(batch[0].item)
            else:
                for s, result in zip(batch, self._write_many([s.item for s in batch]), strict=True):
                    s.result = result
        except Exception as e:
            if len(batch) > 1:
                # Not the message (it may quote a row): the type is enough to tell a deadlock from an outage.
                log.warning("batch write failed; each item is written again alone items=%d error=%s", len(batch),
                            type(e).__name__)  # fmt: skip
            for s in batch:
                if len(batch) == 1:
                    s.error = e  # its own failure: raised in its caller
                else:
                    s.failed = True  # written again alone by its caller
        except BaseException:
            for s in batch:
                s.failed = True  # interrupted (KeyboardInterrupt, SystemExit): the others write their own again
            raise
        finally:
            with self._lock:
                following = self._waiting[0] if self._waiting else None
                if following is None:
                    self._writing = False
                else:
                    following.lead = True
            for s in batch:
                s.ready.release()
            if following is not None:
                following.ready.release()
