"""The runtime in this process: its parts, one reply sender shared with the scheduler, a stop that leaves no thread
behind, and the HTTP server's limits against idle connections and huge declared bodies (over real sockets).
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.config import Config
from bot.domain.errors import ConfigError
from bot.runtime import COMMANDS, Runtime
from bot.slack.web import MAX_BODY_BYTES
from bot.storage import db
from tests.support.helpers import connect, rows
from tests.support.slackhttp import SlackHTTP, request


@pytest.fixture
def make_runtime(store, settings, fake_slack, clock) -> Iterator:
    """make_runtime(parts, **config changes) -> a started Runtime on 127.0.0.1 and a free port; stopped after."""
    made: list[Runtime] = []

    def build(parts, **changes) -> Runtime:
        runtime = Runtime(
            parts,
            settings=replace(settings, host="127.0.0.1", port=0),
            config=replace(Config(), **changes),
            store=store,
            client=WebClient(base_url=fake_slack.base_url, timeout=5),
            clock=clock,
        )
        made.append(runtime)
        runtime.start()
        return runtime

    yield build
    for runtime in made:
        runtime.stop()


def threads_other_than(before: set[threading.Thread]) -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t not in before}


def wait_for_threads_to_end(before: set[threading.Thread], *, timeout: float = 3.0) -> set[threading.Thread]:
    """The threads started since `before` still alive after `timeout` (a stopped thread may take a moment to exit)."""
    deadline = time.monotonic() + timeout
    while threads_other_than(before) and time.monotonic() < deadline:
        time.sleep(0.02)
    return threads_other_than(before)


def test_the_commands_are_choices_of_parts():
    assert COMMANDS["run"] == {"http", "socket_mode", "replies", "scheduler", "home_refresh"}
    assert COMMANDS["web"] == {"http", "socket_mode", "replies", "home_refresh"}
    assert COMMANDS["scheduler"] == {"scheduler", "probes"}  # probes: on METRICS_PORT, when it is set
    with pytest.raises(ValueError, match="unknown runtime parts: smtp"):
        Runtime({"smtp"}, settings=None, config=Config())  # type: ignore[arg-type]


def test_run_serves_replies_refreshes_home_and_stop_ends_every_thread_it_started(
    make_runtime, store, fake_slack, clock
):
    before = set(threading.enumerate())
    runtime = make_runtime(COMMANDS["run"])
    assert runtime.running_parts() == {"http", "replies", "scheduler", "home_refresh"}  # no SLACK_APP_TOKEN
    # The scheduler's reply job drains the runtime's one sender: there is no other in this runtime.
    assert runtime.scheduler is not None and runtime.replies is not None
    slack = SlackHTTP(f"http://127.0.0.1:{runtime.port}")
    connect(store, fake_slack, "U1")
    fake_slack.add_user("U2", tz="Europe/Rome")

    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    [post] = fake_slack.wait_for("chat.postMessage")  # the reply thread, woken by the listener
    assert post.token == "xoxp-T1-U1"
    assert slack.command("set mon-thu 10-16", user="U1").status == 200
    [home] = fake_slack.wait_for("views.publish")  # the Home refresher's thread
    assert home.params["user_id"] == "U1"
    started = threads_other_than(before)
    names = {t.name for t in started}
    assert {"http", "reply-sender", "home-refresh"} <= names
    assert sum(name == "reply-sender" for name in names) == 1

    runtime.stop()
    assert wait_for_threads_to_end(before) == set()
    runtime.stop()  # twice is harmless
    assert [r["state"] for r in rows(store, db.replies)] == ["sent"]


def test_the_scheduler_alone_drains_pending_replies_with_one_sender_and_its_stop_ends_every_thread(
    make_runtime, store, fake_slack, clock
):
    before = set(threading.enumerate())
    runtime = make_runtime(COMMANDS["scheduler"])
    assert runtime.running_parts() == {"scheduler"}
    assert runtime.app is None and runtime.server is None  # no Bolt app, no port: it serves nothing
    job = runtime.scheduler.get_job("offhours-replies")
    assert job is not None
    runtime.stop()
    assert wait_for_threads_to_end(before) == set()


def test_a_part_that_cannot_start_stops_those_that_did(settings, store, fake_slack, clock):
    before = set(threading.enumerate())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        runtime = Runtime(
            COMMANDS["run"],
            settings=replace(settings, host="127.0.0.1", port=taken.getsockname()[1]),
            config=Config(),
            store=store,
            client=WebClient(base_url=fake_slack.base_url, timeout=5),
            clock=clock,
        )
        with pytest.raises(ConfigError, match=r"cannot listen on OFFHOURS_HOST=127\.0\.0\.1"):
            runtime.start()
    assert runtime.running_parts() == set()
    assert wait_for_threads_to_end(before) == set()


def test_a_request_in_flight_at_stop_is_answered(make_runtime, store, fake_slack, clock):
    runtime = make_runtime({"http"})
    connect(store, fake_slack, "U1")
    # Opening the Home tab publishes it before the answer: a slow views.publish holds the request in flight.
    fake_slack.fail("views.publish", delay=1.0)
    slack = SlackHTTP(f"http://127.0.0.1:{runtime.port}")
    answers: list[int] = []
    opening = threading.Thread(
        target=lambda: answers.append(
            slack.event({"type": "app_home_opened", "user": "U1", "tab": "home"}, authorized="UBOT").status
        )
    )
    opening.start()
    fake_slack.wait_for("views.publish")
    runtime.stop()  # while the request waits on Slack
    opening.join(10)
    assert answers == [200]


# --- the server's limits, over real sockets -------------------------------------------------------------------


def test_150_idle_connections_do_not_stop_healthz(make_runtime):
    runtime = make_runtime({"http"})
    idle = []
    try:
        for _ in range(150):
            idle.append(socket.create_connection(("127.0.0.1", runtime.port), timeout=5))
        time.sleep(0.3)  # let the server's loop accept them all (they send nothing)
        started = time.monotonic()
        answer = request(f"http://127.0.0.1:{runtime.port}/healthz")
        assert answer.status == 200
        assert time.monotonic() - started < 3
    finally:
        for s in idle:
            s.close()


def test_idle_connections_are_closed_by_the_server(make_runtime):
    from bot.slack.web import SERVER_LIMITS

    runtime = make_runtime({"http"})
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=5) as idle:
        idle.settimeout(SERVER_LIMITS["channel_timeout"] + SERVER_LIMITS["cleanup_interval"] + 5)
        started = time.monotonic()
        assert idle.recv(1) == b""  # closed by the server, not kept for ever
        assert time.monotonic() - started <= SERVER_LIMITS["channel_timeout"] + SERVER_LIMITS["cleanup_interval"] + 1


def spooled_files(directory: Path) -> list[str]:
    """This process's open files in `directory` (waitress spools big bodies to unlinked temporary files)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc")
def test_a_declared_1_gib_body_is_refused_from_its_headers_without_reading_it(make_runtime, tmp_path, monkeypatch):
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    runtime = make_runtime({"http"})
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {1024**3 - 1}\r\n\r\n"  # 1 GiB is waitress's own default limit: one byte under it
    ).encode()
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=5) as conn:
        started = time.monotonic()
        conn.sendall(head)
        sent = 0
        try:  # 2 MiB of the body: a server that reads it spools it to a temporary file beyond 512 KiB
            for _ in range(32):
                conn.sendall(b"x" * 65536)
                sent += 65536
        except OSError:
            pass  # the server answered and closed the connection: what should happen
        time.sleep(0.5)  # what was sent has reached the server's loop by now, if it reads it
        assert spooled_files(spool) == []
        answer = conn.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
        assert time.monotonic() - started < 3
    assert list(spool.iterdir()) == []


def status_of_post(port: int, *, length: int, body: bytes) -> bytes:
    """POST /slack/events declaring `length` bytes and sending `body`; the answer's status line. The server may
    answer and close before the body is sent (that is the point), so a failed send is not a failure."""
    head = f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head)
        with contextlib.suppress(OSError):
            conn.sendall(body)
        return conn.makefile("rb").readline().strip()


def test_the_server_and_the_app_draw_the_body_line_at_the_same_size(make_runtime):
    runtime = make_runtime({"http"})
    # Unsigned: the largest allowed body reaches the app (which refuses the signature), one byte more does not.
    largest = b"x" * MAX_BODY_BYTES
    assert status_of_post(runtime.port, length=MAX_BODY_BYTES, body=largest) == b"HTTP/1.1 401 Unauthorized"
    too_big = status_of_post(runtime.port, length=MAX_BODY_BYTES + 1, body=b"")  # refused from the headers alone
    assert too_big == b"HTTP/1.1 413 Request Entity Too Large"


# --- Socket Mode -----------------------------------------------------------------------------------------------


@pytest.fixture
def fake_socket(fake_slack) -> Iterator:
    from tests.support.fakesocket import FakeSocketMode

    fake = FakeSocketMode().start()
    fake_slack.socket_url = fake.url
    yield fake
    fake.stop()


def test_socket_mode_is_a_part_and_stop_ends_its_threads(store, settings, fake_slack, fake_socket, clock):
    before = set(threading.enumerate())
    runtime = Runtime(
        COMMANDS["web"],
        settings=replace(settings, host="127.0.0.1", port=0, app_token="xapp-1-A1-runtime-test"),
        config=Config(),
        store=store,
        client=WebClient(base_url=fake_slack.base_url, timeout=5),
        clock=clock,
    )
    try:
        runtime.start()
        fake_socket.wait_connected()
        assert runtime.running_parts() == {"http", "socket_mode", "replies", "home_refresh"}
    finally:
        stopping = time.monotonic()
        runtime.stop()
    assert time.monotonic() - stopping < 10  # the SDK's receiving thread waits out its 3-second recv
    assert wait_for_threads_to_end(before, timeout=10) == set()


def test_a_socket_mode_token_slack_refuses_stops_start_up_and_every_part_before_it(
    store, settings, fake_slack, fake_socket, clock
):
    fake_slack.fail("apps.connections.open", error="invalid_auth")
    before = set(threading.enumerate())
    runtime = Runtime(
        COMMANDS["run"],
        settings=replace(settings, host="127.0.0.1", port=0, app_token="xapp-1-A1-refused"),
        config=Config(),
        store=store,
        client=WebClient(base_url=fake_slack.base_url, timeout=5),
        clock=clock,
    )
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN: Slack refused it"):
        runtime.start()  # HTTP was listening already: its socket and request threads are closed again
    assert runtime.running_parts() == set()
    assert wait_for_threads_to_end(before) == set()
