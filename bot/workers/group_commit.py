"""Group commit: items added by many threads are written together, by whichever thread finds no write under way.

Each write is one transaction, and transactions (not rows) were the cost: on SQLite every statement releases the
GIL and the threads queue for the single writer. While one batch is being written, the next one gathers; there
is no extra thread to start or stop. The thread that finds no write under way writes every batch that gathers
until none is left, so it may be held a little longer than its own write. The write function must not call
`flush` (it would wait for itself).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    def __init__(self, write: Callable[[list[T]], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiting: list[T] = []
        self._writing = False

    def add(self, item: T) -> None:
        """Queue `item`; if no write is under way, write everything queued now (this thread), else return at once.

        A failed write raises in the thread that ran it; the items of that batch are dropped (their callers' own
        recovery applies), those added meanwhile wait for the next `add` or `flush`.
        """
        with self._lock:
            self._waiting.append(item)
            if self._writing:
                return  # the writer takes it in its next round
            self._writing = True
        self._write_all()

    def flush(self) -> None:
        """Return once everything added before this call has been written (or its write failed)."""
        with self._lock:
            while self._writing:
                self._idle.wait()
            if not self._waiting:
                return
            self._writing = True
        self._write_all()

    def _write_all(self) -> None:
        while True:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._writing = False
                    self._idle.notify_all()
                    return
            try:
                self._write(batch)
            except BaseException:
                with self._lock:
                    self._writing = False  # whatever was added meanwhile goes with the next add or flush
                    self._idle.notify_all()
                raise
