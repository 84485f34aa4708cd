"""PostgreSQL's commit rate on this machine, for the transactions a DM costs: pgbench with custom scripts.

    python bench/commit_rate.py [--quick] [--clients 16] [--seconds 10]

On a database of its own (created and dropped, as bench/scale_out.py's are), migrated, one recipient connected:
  - `record`: the DM's record transaction as bot/storage/inbox.py `record` runs it (the recipient's installation
    row FOR SHARE, INSERT the message ON CONFLICT DO NOTHING, the sender's earlier replies, INSERT the reply ON
    CONFLICT DO NOTHING), a new sender and message each time;
  - `one_insert`: one INSERT of a one-row table per transaction, the cheapest durable commit;
  - `select`: one read-only SELECT per transaction, no commit to flush (the CPU and round trip alone).
pgbench runs on this machine too, as the load generator. Prints a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import make_url

from bench.common import emit, make_store, seed_connected
from bench.pg_stats import create_database, drop_database

RECORD = """\\set n random(1, 2000000000)
BEGIN;
SELECT id FROM slack_installations WHERE (team_id = 'T1' OR is_enterprise_install) AND user_id = 'UR000000'
  AND user_token IS NOT NULL LIMIT 1 FOR SHARE;
INSERT INTO after_hours_messages (team_id, recipient_id, channel_id, ts, thread_ts, sender_id, received_at, due_at,
  source) VALUES ('T1', 'UR000000', 'D' || :n, :n || '.000100', :n || '.000100', 'S' || :n, now(),
  now() + interval '8 hours', 'dm') ON CONFLICT DO NOTHING;
SELECT id, state, last_error, window_key, ephemeral FROM auto_replies WHERE team_id = 'T1'
  AND recipient_id = 'UR000000' AND sender_id = 'S' || :n
  AND (window_key = 'w1' OR (window_start < now() + interval '8 hours' AND window_end > now())) ORDER BY id;
INSERT INTO auto_replies (team_id, recipient_id, sender_id, window_key, channel_id, message_ts, thread_ts,
  received_at, next_attempt_at, window_start, window_end, external, ephemeral) VALUES ('T1', 'UR000000',
  'S' || :n, 'w1', 'D' || :n, :n || '.000100', :n || '.000100', now(), now(), now(), now() + interval '8 hours',
  false, false) ON CONFLICT DO NOTHING;
END;
"""
ONE_INSERT = "\\set n random(1, 2000000000)\nINSERT INTO bench_commits (v) VALUES (:n);\n"
SELECT = "SELECT count(*) FROM slack_installations WHERE user_id = 'UR000000';\n"
SCRIPTS = {"record": RECORD, "one_insert": ONE_INSERT, "select": SELECT}


def libpq(url: str) -> str:
    u = make_url(url)
    parts = {"host": u.host or "127.0.0.1", "port": u.port or 5432, "user": u.username, "dbname": u.database,
             "password": u.password}  # fmt: skip
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


def pgbench(url: str, script: str, *, clients: int, seconds: int, workdir: Path) -> dict:
    path = workdir / "script.sql"
    path.write_text(script)
    done = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", str(path),
         libpq(url)],
        capture_output=True, text=True, timeout=seconds + 60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed: {done.stderr[-2000:]}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    return {
        "tps": float(tps.group(1)) if tps else None,
        "latency_ms": float(latency.group(1)) if latency else None,
        "failed": int(failed.group(1)) if failed else 0,
    }


def measure(*, clients: int, seconds: int) -> dict:
    """Every script on a fresh database of its own; {"skipped": reason} without pgbench."""
    if shutil.which("pgbench") is None:
        return {"skipped": "pgbench is not on PATH"}
    url = create_database()
    try:
        store = make_store(url)
        seed_connected(store, ["UR000000"], tz="UTC")
        with store.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bench_commits (id bigserial PRIMARY KEY, v bigint)")
        store.close()
        with tempfile.TemporaryDirectory(prefix="offhours-pgbench-") as tmp:
            results = {name: pgbench(url, script, clients=clients, seconds=seconds, workdir=Path(tmp))
                       for name, script in SCRIPTS.items()}  # fmt: skip
    finally:
        drop_database(url)
    return {"clients": clients, "seconds": seconds, "at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", **results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s per script (CI smoke test)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    result = measure(clients=args.clients, seconds=args.seconds or (1 if args.quick else 10))
    for name in SCRIPTS:
        if name in result:
            r = result[name]
            print(f"{name:<10} tps={r['tps']:8.0f} latency={r['latency_ms']:.2f}ms failed={r['failed']}", flush=True)
    emit({"benchmark": "commit_rate", **result}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
