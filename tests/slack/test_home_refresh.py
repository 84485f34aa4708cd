"""The Home refresher on its own: queues, coalesces, publishes from one thread, and stops when told."""

from __future__ import annotations

import threading

from bot.slack.home_refresh import HomeRefresher


class Publisher:
    """A publish function that records who it published and can be held until released."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []
        self.release = threading.Event()
        self.release.set()
        self._changed = threading.Condition()

    def __call__(self, team_id: str, user_id: str) -> None:
        self.release.wait(5)
        if user_id == "UBROKEN":
            raise RuntimeError("views.publish exploded")
        with self._changed:
            self.published.append((team_id, user_id))
            self._changed.notify_all()

    def wait_for(self, n: int) -> list[tuple[str, str]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.published) >= n, timeout=5), self.published
            return list(self.published)


def test_changes_queued_before_start_are_published_once_each_after_it():
    publish = Publisher()
    refresher = HomeRefresher(publish)
    for user in ("U1", "U2", "U1"):  # U1 twice: published once, in first-changed order
        refresher("T1", user)
    assert not refresher.running and publish.published == []
    refresher.start()
    try:
        assert publish.wait_for(2) == [("T1", "U1"), ("T1", "U2")]
    finally:
        refresher.stop()
    assert publish.published == [("T1", "U1"), ("T1", "U2")]


def test_a_failing_publish_keeps_the_worker_for_the_others(caplog):
    publish = Publisher()
    refresher = HomeRefresher(publish)
    refresher.start()
    try:
        refresher("T1", "UBROKEN")
        refresher("T1", "U2")
        assert publish.wait_for(1) == [("T1", "U2")]
    finally:
        refresher.stop()
    assert "home: background refresh failed team=T1" in caplog.text


def test_changes_made_quietly_queue_nothing():
    publish = Publisher()
    refresher = HomeRefresher(publish)
    with refresher.quiet():
        refresher("T1", "U1")
    refresher("T1", "U2")
    refresher.start()
    try:
        assert publish.wait_for(1) == [("T1", "U2")]
    finally:
        refresher.stop()


def test_stop_ends_the_thread_drops_what_is_queued_and_ignores_later_changes():
    publish = Publisher()
    publish.release.clear()  # the first publish is under way when stop comes
    refresher = HomeRefresher(publish)
    refresher.start()
    refresher("T1", "U1")
    refresher("T1", "U2")
    [thread] = [t for t in threading.enumerate() if t.name == "home-refresh"]
    stopping = threading.Thread(target=refresher.stop)
    stopping.start()
    with refresher._changed:  # stop has begun (it notifies once it has dropped the queue) before U1's publish ends
        assert refresher._changed.wait_for(lambda: refresher._stopping, timeout=5)
    publish.release.set()
    stopping.join(5)
    assert not thread.is_alive() and not refresher.running
    refresher("T1", "U3")  # after stop: nothing queued, no thread started
    assert publish.published in ([("T1", "U1")], [])  # U2 was dropped (U1 may have been taken before stop)
    assert not any(t.name == "home-refresh" for t in threading.enumerate())


def test_without_a_publisher_nothing_is_queued():
    refresher = HomeRefresher()
    refresher("T1", "U1")
    publish = Publisher()
    refresher.attach(publish)
    refresher("T1", "U2")
    refresher.start()
    try:
        assert publish.wait_for(1) == [("T1", "U2")]
    finally:
        refresher.stop()
