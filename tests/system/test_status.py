"""`python -m bot status`: per workspace, people connected, pending deliveries by kind, the oldest pending, recaps sent
in the last 24 hours, and the scheduler's last tick, read from the database without writing to it."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.status import run_status
from bot.storage import db, ops
from bot.workers.recaps import RecapSender
from tests.support.helpers import connect, table_count

REPO = Path(__file__).resolve().parents[2]
RECAP_DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 in New York


# The kinds added with status sync, nudges and channel office hours: nothing of theirs is pending here.
NEW_KINDS = ", status 0, nudge 0, channel_reply 0, channel_summary 0"


@pytest.fixture
def environ(store, tmp_path) -> dict[str, str]:
    config = tmp_path / "config.yaml"
    config.write_text("retention_days: 14\n", encoding="utf-8")
    return {"DATABASE_URL": store.url, "OFFHOURS_CONFIG": str(config), "SLACK_CLIENT_ID": "111.222"}


def status(environ: dict[str, str], *, at: datetime) -> tuple[int, str]:
    out = io.StringIO()
    code = run_status(environ, out=out, clock=lambda: at)
    return code, out.getvalue()


def snapshot(store) -> dict[str, int]:
    return {table.name: table_count(store, table) for table in db.metadata.sorted_tables}


def test_status_shows_each_workspace_from_the_database(environ, store, fake_slack, offhours, slack, clock):
    for user in ("U1", "U2"):
        connect(store, fake_slack, user)
    connect(store, fake_slack, "U9", team_id="T2")
    fake_slack.add_user("U5", tz="Europe/Rome")
    # Tue 22:00 in New York: two DMs to U1 and one to U2 after hours, each with its auto-reply queued.
    for n, (sender, recipient) in enumerate([("U5", "U1"), ("U2", "U1"), ("U5", "U2")]):
        assert slack.dm(sender=sender, recipient=recipient, ts=clock().timestamp() + n).status == 200

    code, text = status(environ, at=clock() + timedelta(minutes=3))
    assert code == 0, text
    assert "scheduler: never ticked" in text
    assert "Example (T1)\n  people connected:            2\n" in text
    assert f"  pending deliveries:          auto_reply 3, recap 0, urgent 0{NEW_KINDS}\n" in text
    assert "  oldest pending:              due 2026-03-04 03:00:00 UTC (3 min ago)\n" in text
    assert "  recaps sent in the last 24h: 0\n" in text
    t2 = (
        "Example (T2)\n  people connected:            1\n"
        f"  pending deliveries:          auto_reply 0, recap 0, urgent 0{NEW_KINDS}\n"
    )
    assert t2 in text

    # Wed 09:00: U1's and U2's recaps are due; Slack refuses both for now, so they wait to be retried.
    clock.set(RECAP_DUE)
    fake_slack.fail("chat.postMessage", status=500, times=2)
    RecapSender(offhours.services).tick(clock())
    ops.record_tick(store.engine, "scheduler", now=clock())
    before = snapshot(store)
    code, text = status(environ, at=RECAP_DUE + timedelta(minutes=5))
    assert code == 0, text
    assert snapshot(store) == before  # read-only
    assert "scheduler: last tick 2026-03-04 14:00:00 UTC (5 min ago)" in text
    assert f"  pending deliveries:          auto_reply 3, recap 2, urgent 0{NEW_KINDS}\n" in text
    assert "  oldest pending:              due 2026-03-04 03:00:00 UTC (11 h 5 min ago)\n" in text

    clock.advance(minutes=20)
    assert RecapSender(offhours.services).tick(clock()) == 2
    code, text = status(environ, at=clock())
    assert f"  pending deliveries:          auto_reply 3, recap 0, urgent 0{NEW_KINDS}\n" in text
    assert "  recaps sent in the last 24h: 2\n" in text
    code, text = status(environ, at=clock() + timedelta(hours=25))
    assert "  recaps sent in the last 24h: 0\n" in text
    for secret in ("xoxp-", "xoxb-", "client-secret"):
        assert secret not in text


def test_status_refuses_an_old_schema_and_an_unreachable_database(environ, store, tmp_path):
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        code, text = status(environ, at=RECAP_DUE)
    finally:
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": ops.head_revision()})
    assert code == 1
    assert text == f"database schema at revision 0001 (newest: {ops.head_revision()}): run python -m bot migrate\n"

    code, text = status({**environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'gone' / 'x.db'}"}, at=RECAP_DUE)
    assert code == 1
    assert text.startswith("database unreachable (OperationalError)")


def test_python_m_bot_status_runs_as_a_command(environ, store, fake_slack):
    connect(store, fake_slack, "U1")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "status"], cwd=REPO, env={**environ, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Example (T1)" in done.stdout and "people connected:            1" in done.stdout
