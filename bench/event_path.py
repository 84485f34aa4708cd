"""Event path: signed after-hours DMs into the production server, against a fake Slack, side by side with bare Bolt.

    python bench/event_path.py [--quick] [--events N] [--database sqlite|postgres] [--servers waitress,gunicorn]

For each (app, server): a fresh database with the recipients connected, the server in a subprocess, N signed
`message.im` events from N distinct senders at concurrency 16 over keep-alive http.client connections; then wait
(bounded) until N replies reached the fake Slack. Prints a JSON summary on the last line.

Apps (`--apps`): `bare` (the goal's ceiling), `offhours`, and `recording`, a reference between them: bare Bolt that
also writes each DM to the database before the ack (bench/server.py). It shows how much of the gap the durable
record alone costs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CLIENT_ID,
    PYTHON,
    ROOT,
    SIGNING_SECRET,
    TEAM,
    FakeSlackProcess,
    analyze,
    cpu_seconds,
    emit,
    make_store,
    percentile,
    process_tree,
    seed_connected,
    status_kib,
)
from tests.support.slackhttp import dm_channel, signed_headers

CONCURRENCY = 16
# BENCH_POSTGRES_URL: another database of your own (its `public` schema is dropped and recreated, as bench8's is)
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench8")


def night_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about 02:00 now: every recipient is off for hours, whatever the real time."""
    offset = (2 - now.hour) % 24
    if offset > 14:
        offset -= 24
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT-{offset}" if offset > 0 else f"Etc/GMT+{-offset}"  # POSIX signs: Etc/GMT-7 is UTC+7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def event_body(n: int, *, sender: str, recipient: str, ts: float) -> str:
    event = {
        "type": "message",
        "channel": dm_channel(sender, recipient),
        "channel_type": "im",
        "user": sender,
        "text": f"hello {n}",
        "ts": f"{ts:.6f}",
        "event_ts": f"{ts:.6f}",
    }
    return json.dumps(
        {
            "token": "legacy",
            "team_id": TEAM,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": f"Ev{n:08d}",
            "event_time": int(ts),
            "event": event,
            "authorizations": [{"team_id": TEAM, "user_id": recipient, "is_bot": False, "enterprise_id": None}],
            "is_ext_shared_channel": False,
        }
    )


def send_load(port: int, bodies: list[str], *, concurrency: int, deadline: float) -> tuple[list[float], dict[int, int]]:
    """POST every body (signed at send time) from `concurrency` keep-alive connections; latencies in seconds."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    next_index = iter(range(len(bodies)))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        codes: dict[int, int] = {}
        try:
            while time.monotonic() < deadline:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    break
                body = bodies[i].encode()
                headers = {"Content-Type": "application/json", **signed_headers(bodies[i], secret=SIGNING_SECRET)}
                started = time.perf_counter()
                try:
                    conn.request("POST", "/slack/events", body=body, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    status = resp.status
                except (OSError, http.client.HTTPException):
                    status = 0  # connection trouble: counted as a non-200, and reconnect
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                mine.append(time.perf_counter() - started)
                codes[status] = codes.get(status, 0) + 1
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)
                for code, count in codes.items():
                    statuses[code] = statuses.get(code, 0) + count

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return latencies, statuses


def wait_ready(proc: subprocess.Popen, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening in time")


def run_one(
    *,
    app: str,
    server: str,
    events: int,
    recipients: int,
    database: str,
    fake: FakeSlackProcess,
    workdir: Path,
    reply_timeout: float,
    profile: Path | None = None,
) -> dict:
    """One measured run against a fresh database and a fresh server process (under py-spy with `profile`)."""
    now = datetime.now(UTC)
    # A new SQLite file per run: an app measured twice in one invocation (interleaved A/B) must not find the first
    # run's rows.
    sqlite_file = Path(tempfile.mkdtemp(prefix=f"{app}-{server}-", dir=workdir)) / "bench.db"
    url = POSTGRES_URL if database == "postgres" else f"sqlite:///{sqlite_file}"
    recipient_ids = [f"UR{i:06d}" for i in range(recipients)]
    if app == "offhours":
        store = make_store(url)
        seed_connected(store, recipient_ids, tz=night_zone(now))
        analyze(store)
        store.close()
    fake.reset()
    port = free_port()
    env = {
        **os.environ,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": "bench-secret",
        "DATABASE_URL": url,
        "SLACK_API_URL": fake.base_url,
        "PYTHONPATH": str(ROOT),
    }
    log = open(workdir / f"{app}-{server}.log", "w")  # noqa: SIM115 - closed below
    command = [PYTHON, str(ROOT / "bench" / "server.py"), "--app", app, "--server", server, "--port", str(port)]
    if profile is not None:
        # Collapsed stacks of every thread (idle ones left out), for bench/profile_summary.py or a flame graph tool.
        out = profile / f"{app}-{server}-{database}.txt"
        py_spy = str(Path(PYTHON).parent / "py-spy")
        gil = ["--gil"] if os.environ.get("BENCH_PROFILE_GIL") else []  # only samples holding the GIL: CPU in Python
        rate = os.environ.get("BENCH_PROFILE_RATE", "50")  # samples/s; py-spy costs the server more CPU the higher
        command = [py_spy, "record", "-f", "raw", "-r", rate, "--nonblocking", *gil, "-o", str(out), "--", *command]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_ready(proc, port)
        time.sleep(0.5 if server == "gunicorn" else 0.1)  # gunicorn's worker boots after the master listens
        pids = process_tree(proc.pid)
        cpu_before = cpu_seconds(pids)
        base = time.time()
        bodies = [
            event_body(n, sender=f"US{n:06d}", recipient=recipient_ids[n % recipients], ts=base + n / 1e6)
            for n in range(events)
        ]
        started = time.monotonic()
        latencies, statuses = send_load(port, bodies, concurrency=CONCURRENCY, deadline=started + reply_timeout)
        acked = time.monotonic()
        stats = fake.wait_posts(events, timeout=reply_timeout)
        done = time.monotonic()
        pids = process_tree(proc.pid)
        cpu = cpu_seconds(pids) - cpu_before
        peak_rss_kib = sum(status_kib(pid, "VmHWM") for pid in pids)
    finally:
        if profile is not None:
            for pid in process_tree(proc.pid)[1:]:
                os.kill(pid, signal.SIGTERM)  # the server; py-spy then writes its file and exits
        else:
            proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
    replies = stats["posts"]
    all_replied_s = (stats["last_post"] - started) if replies >= events else None
    recorded = count_recorded(url) if app == "recording" else None
    ack_s = acked - started
    return {
        "app": app,
        "server": server,
        "experiment": os.environ.get("BENCH_EXPERIMENT") if app == "offhours" else None,
        "database": database,
        "events": events,
        "sent": len(latencies),
        "non_200": sum(count for code, count in statuses.items() if code != 200),
        "statuses": {str(k): v for k, v in statuses.items()},
        "acks_per_s": len(latencies) / ack_s,
        "ack_p50_ms": percentile(latencies, 50) * 1000,
        "ack_p95_ms": percentile(latencies, 95) * 1000,
        "ack_p99_ms": percentile(latencies, 99) * 1000,
        "ack_max_ms": max(latencies) * 1000 if latencies else float("nan"),
        "replies": replies,
        "all_replied_s": all_replied_s,
        "replies_per_s": (replies / all_replied_s) if all_replied_s else replies / (done - started),
        "cpu_s_per_1000": cpu / max(len(latencies), 1) * 1000,
        "peak_rss_mib": peak_rss_kib / 1024,
        "other_calls": {k: v for k, v in stats["methods"].items() if k != "chat.postMessage"},
        "recorded": recorded,
    }


def count_recorded(url: str) -> int:
    """The recording reference's rows: each DM must really have been written, or its figures mean nothing."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM bench_recorded_dms")).scalar_one()
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 events, waitress only (CI smoke test)")
    parser.add_argument("--events", type=int)
    parser.add_argument("--recipients", type=int, help="connected recipients the senders write to (default N/4)")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--servers", default=None, help="comma-separated: waitress,gunicorn")
    parser.add_argument("--apps", default="bare,recording,offhours", help="comma-separated: bare,recording,offhours")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--profile", type=Path, help="run each server under py-spy; collapsed stacks go to this folder")
    args = parser.parse_args(argv)
    events = args.events or (50 if args.quick else 2000)
    recipients = args.recipients or max(1, events // 4)
    servers = (args.servers or ("waitress" if args.quick else "waitress,gunicorn")).split(",")
    apps = args.apps.split(",")
    reply_timeout = 20 if args.quick else 300
    results = []
    fake = FakeSlackProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="offhours-bench-") as tmp:
            for server in servers:
                for app in apps:
                    result = run_one(
                        app=app,
                        server=server,
                        events=events,
                        recipients=recipients,
                        database=args.database,
                        fake=fake,
                        workdir=Path(tmp),
                        reply_timeout=reply_timeout,
                        profile=args.profile,
                    )
                    results.append(result)
                    print(
                        f"{app:<9} {server:<9} {args.database:<8} acks/s={result['acks_per_s']:7.1f} "
                        f"p50={result['ack_p50_ms']:6.1f}ms p95={result['ack_p95_ms']:6.1f}ms "
                        f"p99={result['ack_p99_ms']:6.1f}ms replies={result['replies']}/{events} "
                        f"all_replied={result['all_replied_s'] or float('nan'):.2f}s "
                        f"replies/s={result['replies_per_s']:.1f} cpu/1000={result['cpu_s_per_1000']:.2f}s "
                        f"rss={result['peak_rss_mib']:.0f}MiB non200={result['non_200']}",
                        flush=True,
                    )
    finally:
        fake.close()
    summary = {"benchmark": "event_path", "concurrency": CONCURRENCY, "recipients": recipients, "results": results}
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
