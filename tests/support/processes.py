"""Real Offhours processes for the system tests: start, wait for, kill; connected people off hours right now."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from slack_sdk import WebClient

from bot.config import Config
from bot.domain.hours import parse_hours, render_hours
from bot.services import build_services
from bot.settings import Settings
from bot.storage import db
from bot.storage.store import Store
from bot.workers.recaps import RecapSender
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import connect
from tests.support.slackhttp import SIGNING_SECRET, dm_channel

REPO = Path(__file__).resolve().parent.parent.parent
CLIENT_ID = "111.222"  # the store fixture's: installation rows are looked up by client id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def off_hours_spec(now: datetime) -> str:
    """Hours (UTC) that make `now` off-hours for two days or more: one hour on the weekday three days ahead."""
    day = (now + timedelta(days=3)).astimezone(UTC).strftime("%a").lower()
    return render_hours(parse_hours(f"{day} 09:00-10:00"))  # stored in canonical form, as /hours set does


def connect_off_now(store: Store, fake: FakeSlack, user_id: str, *, now: datetime) -> None:
    """Connect a person whose hours make the real `now` an off-hours moment."""
    connect(store, fake, user_id, tz="UTC", now=now)
    store.save_person("T1", user_id, now=now, hours=off_hours_spec(now))


def after_hours_dms(store: Store, fake: FakeSlack, recipients, *, senders_per_recipient: int,
                    now: datetime) -> list[tuple[str, str, str, float]]:  # fmt: skip
    """Connect each recipient off-hours now and plan one DM from each of their senders: (recipient, sender,
    channel, ts), the ts a millisecond apart from `now`. The senders are unknown to the fake Slack: nothing about
    them is looked up (a users.info call for one would be answered user_not_found)."""
    for recipient in recipients:
        connect_off_now(store, fake, recipient, now=now)
    dms = []
    for r, recipient in enumerate(recipients):
        for s in range(senders_per_recipient):
            sender = f"S{r:02d}{s}"
            dms.append((recipient, sender, dm_channel(sender, recipient), now.timestamp() + len(dms) / 1000))
    return dms


def write_config(path: Path, *, poll_seconds: float = 1.0) -> Path:
    path.write_text(f"recap:\n  poll_seconds: {poll_seconds}\n")
    return path


def process_env(*, database_url: str, slack_api_url: str, config_path: Path, port: int) -> dict[str, str]:
    """The environment of a child process: ours, minus anything Offhours reads, plus the test's wiring."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "OFFHOURS_")) and k not in ("DATABASE_URL", "PORT")
    }
    env.update(
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_CLIENT_ID=CLIENT_ID,
        SLACK_CLIENT_SECRET="client-secret",
        DATABASE_URL=database_url,
        PORT=str(port),
        SLACK_API_URL=slack_api_url,
        OFFHOURS_CONFIG=str(config_path),
        PYTHONUNBUFFERED="1",
    )
    return env


class BotProcess:
    """`python -m bot <command>` as a child process, its output in a log file; stopped by its own pid only."""

    def __init__(self, command: str, *, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self.port = port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BotProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", self.command],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Poll /healthz (a short, bounded poll: the only way to know another process is listening)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.command} exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{self.command} not healthy within {timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the container dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it does not end in time. Safe to call twice."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def processes() -> Iterator[list[BotProcess]]:
    """A list to put started processes in; every one is stopped on the way out, whatever happened."""
    started: list[BotProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()


def clear_failures(fake: FakeSlack, method: str) -> None:
    """Drop the scripted failures not used yet (FakeSlack has no public way to do this)."""
    with fake._lock:
        fake._failures[method].clear()


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.1):
    """Poll a database condition written by another process (bounded; there is no event to wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(interval)


def reply_states(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(db.replies.c.state)).scalars())


def recap_sender(store: Store, fake: FakeSlack, *, at: datetime) -> RecapSender:
    """A RecapSender in this process on the test's store, its clock fixed at `at`."""
    settings = Settings(
        signing_secret=SIGNING_SECRET, client_id=CLIENT_ID, client_secret="client-secret", slack_api_url=fake.base_url
    )
    services = build_services(
        Config(), store, settings=settings, client=WebClient(base_url=fake.base_url, timeout=5), clock=lambda: at
    )
    return RecapSender(services)
