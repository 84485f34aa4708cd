"""Scale-out on PostgreSQL: one `python -m bot run` against two `python -m bot web` and one `python -m bot scheduler`.

    python bench/scale_out.py [--quick] [--events N] [--duplicates 0.1] [--configs one,split] [--no-pgbench]

Each configuration gets its own database (`offhours_bench_<random>`, created beside the one BENCH_POSTGRES_SERVER,
else TEST_DATABASE_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/postgres names, and dropped at the end),
the recipients connected and off hours, and real processes started as the Procfile starts them (`one`: `run`;
`split`: `web` twice and `scheduler`). Load: N signed `message.im` events from N distinct senders at concurrency 16,
round-robin over the web processes' ports; a share of them delivered twice, the copy with x-slack-retry-num 1 to
the other web process and sent right after the original (so both are in flight at once). replies/s = N ÷ (first
request to the N-th auto-reply reaching the fake Slack). Then the processes are stopped (SIGTERM) and the fake
Slack and the database are counted: one post per sender's DM channel, one record and one sent reply per DM.
Transactions per DM come from pg_stat_database (xact_commit, xact_rollback) read from another database, before
the processes start and after they stopped, less what a start and stop without load costs; CPU per DM from /proc,
for the Offhours processes and for the PostgreSQL backends serving the run's database (bench/pg_stats.py). After
the configurations: which statements a DM needs (bench/dm_statements.py, in-process: pg_stat_statements is not
loaded on this server) and, with pgbench on PATH, the machine's commit rate for them (bench/commit_rate.py).
Prints a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bench.common import (
    CLIENT_ID,
    PYTHON,
    ROOT,
    SIGNING_SECRET,
    FakeSlackProcess,
    analyze,
    cpu_seconds,
    emit,
    make_store,
    percentile,
    seed_connected,
)
from bench.event_path import event_body, free_port, night_zone
from bench.pg_stats import (
    BackendCpu,
    create_database,
    drop_database,
    per_dm,
    postgres_answers,
    settle_stats,
    table_activity,
    transactions,
)
from tests.support.slackhttp import dm_channel, signed_headers

CONCURRENCY = 16
CONFIGS = {"one": ["run"], "split": ["web", "web", "scheduler"]}  # the Procfile's `web` and `worker` roles


# --- the processes -----------------------------------------------------------------------------------------------


@dataclass
class Process:
    command: str
    port: int  # PORT for run and web, METRICS_PORT for the scheduler: /healthz either way
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self, *, database_url: str, slack_api_url: str) -> Process:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "OFFHOURS_")) and k not in ("DATABASE_URL", "PORT", "METRICS_PORT")
        }
        env.update(
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_CLIENT_ID=CLIENT_ID,
            SLACK_CLIENT_SECRET="bench-secret",
            DATABASE_URL=database_url,
            SLACK_API_URL=slack_api_url,
            OFFHOURS_HOST="127.0.0.1",
            PYTHONUNBUFFERED="1",
        )
        env["METRICS_PORT" if self.command == "scheduler" else "PORT"] = str(self.port)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "bot", self.command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command} exited with {self.proc.returncode}: {self.log_tail()}")
            with suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.command} not healthy within {timeout} s: {self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, as a platform stops a process; SIGKILL only if it does not end in time. Its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_processes(config: str, *, database_url: str, slack_api_url: str, workdir: Path, tag: str) -> list[Process]:
    started: list[Process] = []
    try:
        for n, command in enumerate(CONFIGS[config]):
            log_path = workdir / f"{config}-{tag}-{n}-{command}.log"
            started.append(Process(command, free_port(), log_path).start(database_url=database_url,
                                                                         slack_api_url=slack_api_url))  # fmt: skip
        for process in started:
            process.wait_healthy()
    except BaseException:
        for process in started:
            process.stop()
        raise
    return started


# --- the load --------------------------------------------------------------------------------------------------


@dataclass
class Sent:
    event: int
    retry: int
    started: float
    ended: float
    status: int


@dataclass
class Load:
    sent: list[Sent] = field(default_factory=list)
    wall_s: float = 0.0


def plan(events: int, *, ports: list[int], duplicate_every: int | None) -> list[tuple[int, int, int]]:
    """(event, port, retry number): round-robin over the ports; every `duplicate_every`-th event is followed at once
    by its redelivered copy to the next port (the other web process when there are two)."""
    jobs = []
    for n in range(events):
        jobs.append((n, ports[n % len(ports)], 0))
        if duplicate_every and n % duplicate_every == duplicate_every // 2:
            jobs.append((n, ports[(n + 1) % len(ports)], 1))
    return jobs


def send(jobs: list[tuple[int, int, int]], bodies: list[str], *, deadline: float) -> Load:
    """POST every job from CONCURRENCY threads, each with a keep-alive connection per port, signed at send time."""
    load = Load()
    lock = threading.Lock()
    next_job = iter(jobs)

    def worker() -> None:
        conns: dict[int, http.client.HTTPConnection] = {}
        mine: list[Sent] = []
        try:
            while time.monotonic() < deadline:
                with lock:
                    job = next(next_job, None)
                if job is None:
                    break
                n, port, retry = job
                conn = conns.get(port) or conns.setdefault(port, http.client.HTTPConnection("127.0.0.1", port, 30))
                headers = {"Content-Type": "application/json", **signed_headers(bodies[n], secret=SIGNING_SECRET)}
                if retry:
                    headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
                started = time.perf_counter()
                try:
                    conn.request("POST", "/slack/events", body=bodies[n].encode(), headers=headers)
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    status = 0  # connection trouble: a non-200; the next request reconnects
                    conns.pop(port).close()
                mine.append(Sent(n, retry, started, time.perf_counter(), status))
        finally:
            for conn in conns.values():
                conn.close()
            with lock:
                load.sent.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        for future in [pool.submit(worker) for _ in range(CONCURRENCY)]:
            future.result()
    load.wall_s = time.perf_counter() - started
    return load


def overlapping_copies(sent: list[Sent]) -> tuple[int, int]:
    """(events delivered twice, of which both copies were in flight at the same moment)."""
    by_event: dict[int, list[Sent]] = {}
    for s in sent:
        by_event.setdefault(s.event, []).append(s)
    twice = [copies for copies in by_event.values() if len(copies) > 1]
    overlapped = sum(1 for c in twice if max(s.started for s in c) < min(s.ended for s in c))
    return len(twice), overlapped


# --- one configuration -------------------------------------------------------------------------------------------


def idle_cost(config: str, *, database_url: str, fake: FakeSlackProcess, workdir: Path) -> dict[str, int]:
    """The transactions of starting the configuration's processes and stopping them again, without load."""
    before = transactions(database_url)
    for process in start_processes(config, database_url=database_url, slack_api_url=fake.base_url, workdir=workdir,
                                   tag="idle"):  # fmt: skip
        process.stop()
    return settle_stats(database_url, before)


def run_one(config: str, *, events: int, duplicate_every: int | None, fake: FakeSlackProcess, workdir: Path,
            reply_timeout: float) -> dict:  # fmt: skip
    """One configuration on a database of its own: seed, start, load, wait for the replies, stop, count."""
    database_url = create_database()
    try:
        recipients = [f"UR{i:06d}" for i in range(max(1, events // 4))]
        store = make_store(database_url)
        seed_connected(store, recipients, tz=night_zone(datetime.now(UTC)))
        analyze(store)
        store.close()
        idle = idle_cost(config, database_url=database_url, fake=fake, workdir=workdir)
        fake.reset()
        tables_before = table_activity(database_url)
        before = transactions(database_url)
        started_processes = start_processes(config, database_url=database_url, slack_api_url=fake.base_url,
                                            workdir=workdir, tag="load")  # fmt: skip
        try:
            web_ports = [p.port for p in started_processes if p.command in ("run", "web")]
            base = time.time()
            senders = [f"US{n:06d}" for n in range(events)]
            bodies = [
                event_body(n, sender=senders[n], recipient=recipients[n % len(recipients)], ts=base + n / 1e6)
                for n in range(events)
            ]
            jobs = plan(events, ports=web_ports, duplicate_every=duplicate_every)
            app_pids = [p.proc.pid for p in started_processes if p.proc is not None]
            app_cpu, backends = cpu_seconds(app_pids), BackendCpu(database_url).start()
            started = time.monotonic()
            load = send(jobs, bodies, deadline=started + reply_timeout)
            stats = fake.wait_posts(events, timeout=reply_timeout)
            app_cpu, db_cpu = cpu_seconds(app_pids) - app_cpu, backends.stop()
        finally:
            exits = {f"{p.command}:{p.port}": p.stop() for p in started_processes}
        spent = settle_stats(database_url, before)
        tables = per_dm(table_activity(database_url), tables_before, events)
        after_stop = fake.stats(counts=True)
        dms = [
            (dm_channel(senders[n], recipients[n % len(recipients)]), f"{base + n / 1e6:.6f}") for n in range(events)
        ]
        counted = count_outcomes(database_url, dms=dms, post_counts=after_stop["post_counts"])
        logged = logged_outcomes(started_processes)
    finally:
        drop_database(database_url)
    latencies = [s.ended - s.started for s in load.sent]
    twice, overlapped = overlapping_copies(load.sent)
    load_xacts = {k: spent[k] - idle[k] for k in spent}
    all_replied_s = (stats["last_post"] - started) if stats["posts"] >= events else None
    return {
        "config": config,
        "processes": CONFIGS[config],
        "events": events,
        "requests": len(jobs),
        "sent": len(load.sent),
        "delivered_twice": twice,
        "copies_in_flight_together": overlapped,
        "non_200": sum(1 for s in load.sent if s.status != 200),
        "statuses": {str(k): v for k, v in Counter(s.status for s in load.sent).items()},
        "requests_per_s": len(load.sent) / load.wall_s,
        "ack_p50_ms": percentile(latencies, 50) * 1000,
        "ack_p99_ms": percentile(latencies, 99) * 1000,
        "ack_max_ms": max(latencies, default=float("nan")) * 1000,
        "replies_at_wait": stats["posts"],
        "all_replied_s": all_replied_s,
        "replies_per_s": events / all_replied_s if all_replied_s else None,
        "posts_after_stop": after_stop["posts"],
        "other_calls": {k: v for k, v in after_stop["methods"].items() if k != "chat.postMessage"},
        **counted,
        "logged_outcomes": logged,
        "exit_statuses": exits,
        "transactions": {"load_and_idle": spent, "idle_start_stop": idle, "load": load_xacts},
        "commits_per_dm": load_xacts["commits"] / events,
        "rollbacks_per_dm": load_xacts["rollbacks"] / events,
        "table_activity_per_dm": tables,
        "app_cpu_ms_per_dm": app_cpu / events * 1000,  # the Offhours processes, user + system
        "postgres_cpu_ms_per_dm": db_cpu / events * 1000,  # the backends serving this database
        "most_connections": backends.most,  # backends serving this database at once (max_connections is per server)
        "rows_written_per_dm": (load_xacts["inserted"] + load_xacts["updated"] + load_xacts["deleted"]) / events,
    }


def count_outcomes(database_url: str, *, dms: list[tuple[str, str]], post_counts: dict[str, int]) -> dict:
    """Per DM (channel, ts): its posts at the fake, its records and its auto-reply rows in the database. Lost: a DM
    without a post, a record or a sent reply; duplicated: one with two of any (or a post to a channel not sent to)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            records = Counter(
                tuple(r) for r in conn.execute(sa.text("SELECT channel_id, ts FROM after_hours_messages"))
            )
            reply_rows = conn.execute(sa.text("SELECT channel_id, state FROM auto_replies")).all()
    finally:
        engine.dispose()
    replies = Counter(channel for channel, _ in reply_rows)
    sent = Counter(channel for channel, state in reply_rows if state == "sent")
    channels = {channel for channel, _ in dms}
    strays = sum(count for channel, count in post_counts.items() if count and channel not in channels)
    return {
        "posts_per_dm": dict(Counter(post_counts.get(channel, 0) for channel, _ in dms)),  # {1: N}: exactly once
        "records": sum(records.values()),
        "reply_states": dict(Counter(state for _, state in reply_rows)),
        "duplicates": strays
        + sum(
            1
            for channel, ts in dms
            if post_counts.get(channel, 0) > 1 or records[(channel, ts)] > 1 or replies[channel] > 1
        ),
        "losses": sum(
            1 for channel, ts in dms if not post_counts.get(channel) or not records[(channel, ts)] or not sent[channel]
        ),
    }


def logged_outcomes(processes: list[Process]) -> dict[str, int]:
    """What the listeners logged per message event: `replied` once per DM, `duplicate` for each redelivered copy."""
    outcomes: Counter[str] = Counter()
    for process in processes:
        with suppress(OSError):
            outcomes.update(re.findall(r"event type=message outcome=(\S+)", process.log_path.read_text()))
    return dict(outcomes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 events, pgbench 1 s (CI smoke test)")
    parser.add_argument("--events", type=int)
    parser.add_argument("--duplicates", type=float, default=0.1, help="share of events delivered twice (0 to 0.5)")
    parser.add_argument("--configs", default="one,split", help="comma-separated: one,split")
    parser.add_argument("--no-pgbench", action="store_true", help="skip bench/commit_rate.py's measurement")
    parser.add_argument("--no-census", action="store_true", help="skip bench/dm_statements.py's census")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    problem = postgres_answers()
    if problem:
        print(f"scale_out needs PostgreSQL: {problem} (set BENCH_POSTGRES_SERVER)", file=sys.stderr)
        return 2
    events = args.events or (100 if args.quick else 2000)
    duplicate_every = round(1 / args.duplicates) if args.duplicates > 0 else None
    reply_timeout = 60 if args.quick else 300
    with open("/proc/loadavg") as f:
        load_before = " ".join(f.read().split()[:3])
    results = []
    fake = FakeSlackProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="offhours-scale-") as tmp:
            for config in args.configs.split(","):
                r = run_one(config, events=events, duplicate_every=duplicate_every, fake=fake, workdir=Path(tmp),
                            reply_timeout=reply_timeout)  # fmt: skip
                results.append(r)
                print(
                    f"{config:<6} {'+'.join(r['processes']):<20} replies/s={r['replies_per_s'] or float('nan'):7.1f} "
                    f"p50={r['ack_p50_ms']:6.1f}ms p99={r['ack_p99_ms']:6.1f}ms non200={r['non_200']} "
                    f"twice={r['delivered_twice']} (together {r['copies_in_flight_together']}) "
                    f"dups={r['duplicates']} losses={r['losses']} commits/DM={r['commits_per_dm']:.2f} "
                    f"rollbacks/DM={r['rollbacks_per_dm']:.2f} app_cpu/DM={r['app_cpu_ms_per_dm']:.2f}ms "
                    f"pg_cpu/DM={r['postgres_cpu_ms_per_dm']:.2f}ms connections={r['most_connections']}",
                    flush=True,
                )
    finally:
        fake.close()
    with open("/proc/loadavg") as f:
        load_after = " ".join(f.read().split()[:3])
    census = None
    if not args.no_census:
        from bench.dm_statements import measure as count_statements

        census = count_statements(events=21 if args.quick else 201)
    commit_rate = None
    if not args.no_pgbench:
        from bench.commit_rate import measure

        commit_rate = measure(clients=CONCURRENCY, seconds=1 if args.quick else 10)
    summary = {
        "benchmark": "scale_out",
        "concurrency": CONCURRENCY,
        "duplicate_share": args.duplicates,
        "load_average": {"before": load_before, "after": load_after},
        "results": results,
        "statements": census,
        "commit_rate": commit_rate,
    }
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
