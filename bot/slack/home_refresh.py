"""The Home refresher: republishes a person's Home tab from one background thread after a settings change.

PeopleService calls the refresher (its `on_change` callback) after every change; the Home listener hands it the
function that publishes one person's Home (`attach`). A change made anywhere but the Home tab (`/hours`, the OAuth
callback) is queued here: views.publish is one quick call, but the slash command's ack must not wait on Slack, and a
Slack outage must not turn a saved `/hours set` into an error. The worker reads the settings when it publishes, and a
person queued twice is published once, so the last publish always shows the last change. The runtime starts and
stops the thread; what is still queued at stop is dropped (the person's next open of the tab publishes anyway).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

Publish = Callable[[str, str], None]


class HomeRefresher:
    """PeopleService.on_change callback: queues (team, user) and republishes their Home from one worker thread."""

    def __init__(self, publish: Publish | None = None) -> None:
        self._publish = publish
        self._pending: dict[tuple[str, str], None] = {}  # insertion-ordered set: first changed, first published
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._local = threading.local()

    def attach(self, publish: Publish) -> None:
        """Set what publishes one person's Home (the Home listener does, when it is registered)."""
        self._publish = publish

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Changes made by this thread meanwhile queue no refresh (the caller publishes itself)."""
        self._local.quiet = True
        try:
            yield
        finally:
            self._local.quiet = False

    def __call__(self, team_id: str, user_id: str) -> None:
        if getattr(self._local, "quiet", False) or self._publish is None:
            return
        with self._changed:
            if self._stopping:
                return
            self._pending[(team_id, user_id)] = None
            self._changed.notify()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._changed:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="home-refresh", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Publish nothing more; a publish under way finishes (within the client's timeout, at most `timeout`)."""
        with self._changed:
            self._stopping = True
            dropped = len(self._pending)
            self._pending.clear()
            self._changed.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        if dropped:
            log.info("home: refresher stopped dropped=%d", dropped)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    return
                key = next(iter(self._pending))
                del self._pending[key]
                publish = self._publish
            if publish is None:
                continue
            try:
                publish(*key)
            except Exception:
                # Keep the worker alive for everyone else; the person's next open of the tab publishes anyway.
                log.exception("home: background refresh failed team=%s", key[0])
