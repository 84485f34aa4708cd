"""Shared pieces of the benchmarks: the machine, /proc readings, percentiles, seeding people in bulk, the fake Slack."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from slack_sdk.oauth.installation_store.models.installation import Installation  # noqa: E402
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore  # noqa: E402

from bot.storage.store import Store  # noqa: E402

PYTHON = sys.executable
TEAM = "T1"
CLIENT_ID = "111.222"
SIGNING_SECRET = "bench-signing-secret"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the machine --------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {
        "cpus (nproc)": str(os.cpu_count()),
        "cpu model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load average at start": load,
    }


# --- /proc ----------------------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (gunicorn: the master and its worker)."""
    pids = [pid]
    i = 0
    while i < len(pids):
        try:
            with open(f"/proc/{pids[i]}/task/{pids[i]}/children") as f:
                pids.extend(int(p) for p in f.read().split())
        except OSError:
            pass
        i += 1
    return pids


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of these processes so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except OSError:
            pass
    return total / CLK_TCK


def status_kib(pid: int | str, key: str) -> int:
    """A /proc/<pid>/status figure in KiB: VmRSS (now) or VmHWM (peak)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# --- seeding ----------------------------------------------------------------------------------------------------


def analyze(store: Store) -> None:
    """PostgreSQL: the statistics a workspace's tables have by the time it is busy (its people, tokens and DMs came
    over days, and autovacuum analysed them). Seeded in one second and not analysed, the planner takes each table
    for a few rows and reads every person of the workspace for each batch (`team_id = ?` on the primary key, the
    user ids as a filter). SQLite keeps no statistics unless asked: nothing to do."""
    if store.is_postgres:
        # Outside a transaction: statistics written in one that is rolled back (a plain connect()) are lost.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")


def seed_connected(store: Store, user_ids: Sequence[str], *, tz: str | None, team_id: str = TEAM) -> None:
    """Connect many people at once: installation rows (as the OAuth flow saves them), the bot, and people rows.

    Bulk inserts instead of `installation_store.save` per person, which is a few transactions each.
    """
    import sqlalchemy as sa

    from bot.storage import db

    now = datetime.now(UTC)
    base = now.timestamp()
    rows = []
    for n, user_id in enumerate(user_ids):
        installation = _installation(team_id, user_id, installed_at=base + n / 1000)
        row = installation.to_dict()
        row["client_id"] = store.installation_store.client_id
        row["installed_at"] = datetime.fromtimestamp(row["installed_at"].timestamp(), UTC).replace(tzinfo=None)
        rows.append(row)
    with store.engine.begin() as conn:
        for chunk in range(0, len(rows), 2000):
            conn.execute(db.installations.insert(), rows[chunk : chunk + 2000])
        people = [{"team_id": team_id, "user_id": u, "tz": tz, "updated_at": now, "days_off": ""} for u in user_ids]
        for chunk in range(0, len(people), 2000):
            conn.execute(sa.insert(db.people), people[chunk : chunk + 2000])
    store.installation_store.save_bot(_installation(team_id, user_ids[0], installed_at=base).to_bot())


def _installation(team_id: str, user_id: str, *, installed_at: float) -> Installation:
    return Installation(
        app_id="A1",
        enterprise_id=None,
        team_id=team_id,
        team_name="Bench",
        bot_token=f"xoxb-{team_id}",
        bot_id="B1",
        bot_user_id="UBOT",
        bot_scopes="commands,chat:write,im:write,users:read",
        user_id=user_id,
        user_token=f"xoxp-{team_id}-{user_id}",
        user_scopes="im:history,chat:write",
        installed_at=installed_at,
    )


def make_store(url: str) -> Store:
    """A migrated, empty database (PostgreSQL: the schema is dropped and created again)."""
    store = Store(url, client_id=CLIENT_ID)
    if store.is_postgres:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    store.migrate()
    return store


_ = SQLAlchemyInstallationStore  # the row format above is this store's (see its save())


# --- the fake Slack in its own process ---------------------------------------------------------------------------


class FakeSlackProcess:
    """tests/support/fakeslack.FakeSlack served from a subprocess (bench/fake_server.py), so it has its own GIL."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, str(ROOT / "bench" / "fake_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError(f"fake Slack did not start: {line!r}")
        self.base_url = line

    def call(self, method: str, **params) -> dict:
        req = urllib.request.Request(
            self.base_url + method,
            data=json.dumps(params).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def reset(self, *, per_channel_per_second: float | None = None, workspace_per_minute: float | None = None) -> None:
        self.call(
            "bench.reset", per_channel_per_second=per_channel_per_second, workspace_per_minute=workspace_per_minute
        )

    def stats(self, *, counts: bool = False) -> dict:
        return self.call("bench.stats", counts=counts)

    def wait_posts(self, n: int, *, timeout: float) -> dict:
        """Poll (bounded) until the fake has accepted `n` chat.postMessage calls, or time is up."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["posts"] >= n or time.monotonic() >= deadline:
                return stats
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def emit(summary: dict, json_path: str | None) -> None:
    """A script's results: the JSON summary on the last line of stdout (what run.py reads), and in a file if asked."""
    if json_path:
        Path(json_path).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
