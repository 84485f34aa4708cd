"""Process test on PostgreSQL: two `python -m bot scheduler` processes set each person's Slack status exactly once.

Both schedulers run the status job every second from start-up on the real clock; everyone's hours make now an off
time (tests/support/processes.py), and users.profile.get is slow for the first calls so that the two processes'
ticks overlap. Counted at the fake Slack: one users.profile.set per person, with the window's end as expiration.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.storage import ops, schema
from bot.workers.scheduler import HEARTBEAT_JOB
from tests.support.helpers import connect
from tests.support.processes import BotProcess, free_port, off_hours_spec, process_env, processes, wait_until

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="two processes on one database need PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://...",
)

PEOPLE = tuple(f"P{n:02d}" for n in range(20))
SCOPES = "im:history,chat:write,users.profile:read,users.profile:write"


def test_process_two_schedulers_set_each_status_once(store, fake_slack, tmp_path):
    now = datetime.now(UTC)
    for user_id in PEOPLE:
        connect(store, fake_slack, user_id, tz="UTC", now=now, user_scopes=SCOPES)
        store.save_person("T1", user_id, now=now, hours=off_hours_spec(now))
        store.status.choose("T1", user_id, enabled=True)
    fake_slack.fail("users.profile.get", times=10, delay=0.3)
    config = tmp_path / "config.yaml"
    config.write_text("recap:\n  poll_seconds: 1\nstatus:\n  poll_seconds: 1\n")

    def sent() -> int:
        with store.engine.connect() as conn:
            u = schema.status_updates.c
            return conn.execute(sa.select(sa.func.count()).where(u.state == "sent")).scalar_one()

    with processes() as started:
        for n in (1, 2):
            env = process_env(database_url=store.url, slack_api_url=fake_slack.base_url, config_path=config,
                              port=free_port())  # fmt: skip
            started.append(BotProcess("scheduler", env=env, log_path=tmp_path / f"scheduler-{n}.log").start())
        wait_until(lambda: sent() >= len(PEOPLE), timeout=60, what="every status set")
        # Three more seconds of ticks (the schedulers' heartbeat, every second like the status job): nothing is set
        # again.
        done = datetime.now(UTC)
        wait_until(lambda: (ops.last_ticks(store.engine).get(HEARTBEAT_JOB) or done) >= done + timedelta(seconds=3),
                   timeout=30, what="three more seconds of ticks")  # fmt: skip
    sets = fake_slack.calls_to("users.profile.set")
    per_person = {p: sum(1 for c in sets if c.token == f"xoxp-T1-{p}") for p in PEOPLE}
    assert per_person == dict.fromkeys(PEOPLE, 1), per_person
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(schema.status_updates)).mappings().all()
    assert len(rows) == len(PEOPLE)
    for row in rows:
        status = fake_slack.status_of(row["user_id"])
        assert status["status_expiration"] == int(row["window_end"].timestamp())
        assert status["status_text"].startswith("Off the clock — back ")
