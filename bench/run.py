"""Run every benchmark and write bench/RESULTS.md.

    python bench/run.py            # full: 2,000 events (waitress and gunicorn), 10,000 recaps, engine, memory
    python bench/run.py --quick    # tiny sizes, < 20 s; writes to a temporary file unless --out is given
    python bench/run.py --postgres # also the event path and the fan-out on PostgreSQL (bench8 on 127.0.0.1), and
                                   # the scale-out (bench/scale_out.py: databases of its own beside .../postgres)

Each benchmark is its own script (see bench/README.md) run here as a subprocess; the figures are measured on a
shared machine and are noisy: compare rows of the same run, not runs on different days.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, ROOT, machine, markdown_table

BENCH = ROOT / "bench"
NOTES_MARKER = "<!-- analysis below: written by hand, kept by run.py -->"


def run_script(name: str, *args: str, json_out: Path | None = None, timeout: float = 900) -> tuple[dict | None, str]:
    """Run bench/<name>.py; returns its JSON summary (None for scripts without one) and its printed lines."""
    command = [PYTHON, str(BENCH / f"{name}.py"), *args]
    if json_out is not None:
        command += ["--json", str(json_out)]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    print(f"  {name} {' '.join(args)}: {time.monotonic() - started:.1f} s", flush=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if not line.startswith("{")]
    summary = json.loads(json_out.read_text()) if json_out is not None else None
    return summary, "\n".join(lines)


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def event_section(results: list[dict]) -> str:
    rows = []
    for r in results:
        rows.append(
            [
                r["app"],
                r["server"],
                r["database"],
                fmt(r["acks_per_s"]),
                fmt(r["ack_p50_ms"]),
                fmt(r["ack_p95_ms"]),
                fmt(r["ack_p99_ms"]),
                f"{r['replies']}/{r['events']}",
                fmt(r["all_replied_s"], 2),
                fmt(r["replies_per_s"]),
                fmt(r["cpu_s_per_1000"], 2),
                fmt(r["peak_rss_mib"], 0),
                r["non_200"],
            ]
        )
    table = markdown_table(
        [
            "app",
            "server",
            "db",
            "acks/s",
            "ack p50 ms",
            "p95 ms",
            "p99 ms",
            "replies",
            "all replied s",
            "replies/s",
            "CPU s / 1000 ev",
            "peak RSS MiB",
            "non-200",
        ],
        rows,
    )
    lines = [table, ""]
    by = {(r["app"], r["server"], r["database"]): r for r in results}
    for (app, server, database), r in by.items():
        bare = by.get(("bare", server, database))
        if app != "offhours" or bare is None:
            continue
        ratio = r["replies_per_s"] / bare["replies_per_s"]
        recording = by.get(("recording", server, database))
        goals = [
            f"replies/s {ratio:.2f}x the bare app ({'met' if ratio >= 0.8 else 'MISSED'}, goal ≥ 0.8x)",
            f"ack p99 {r['ack_p99_ms']:.0f} ms ({'met' if r['ack_p99_ms'] < 250 else 'MISSED'}, goal < 250 ms)",
            f"non-200 {r['non_200']} ({'met' if r['non_200'] == 0 else 'MISSED'}, goal 0)",
        ]
        if recording is not None:
            goals.append(
                f"for reference, {r['replies_per_s'] / recording['replies_per_s']:.2f}x bare Bolt that records "
                f"each DM before the ack ({recording['replies_per_s'] / bare['replies_per_s']:.2f}x bare)"
            )
        lines.append(f"- **{server}, {database}**: " + "; ".join(goals))
    waitress = by.get(("offhours", "waitress", "sqlite"))
    gunicorn = by.get(("offhours", "gunicorn", "sqlite"))
    if waitress and gunicorn:
        lines.append(
            f"- **Server choice (Offhours, SQLite)**: gunicorn gthread 1×16 / waitress 16 threads = "
            f"{gunicorn['replies_per_s'] / waitress['replies_per_s']:.2f}x replies/s, "
            f"{gunicorn['acks_per_s'] / waitress['acks_per_s']:.2f}x acks/s, ack p99 {gunicorn['ack_p99_ms']:.0f} "
            f"vs {waitress['ack_p99_ms']:.0f} ms, CPU/1000 events {gunicorn['cpu_s_per_1000']:.2f} vs "
            f"{waitress['cpu_s_per_1000']:.2f} s, peak RSS {gunicorn['peak_rss_mib']:.0f} vs "
            f"{waitress['peak_rss_mib']:.0f} MiB (gunicorn: master + worker)."
        )
    return "\n".join(lines)


def fanout_section(results: list[dict]) -> str:
    rows = [
        [
            r["database"],
            fmt(r["people"]),
            f"{r['workspace_per_minute']:,.0f}/min + 1/s/channel",
            r["workers"],
            fmt(r["floor_s"]),
            fmt(r["steady_rate_s"]),
            fmt(r["delivered_s"]),
            fmt(r["ratio_to_floor"], 2),
            fmt(r["http_429"]),
            r["duplicates"],
            r["losses"],
            json.dumps(r["recap_states"]),
            fmt(r["tick_max_s"], 2),
            json.dumps(r["other_calls"]),
        ]
        for r in results
    ]
    table = markdown_table(
        [
            "db",
            "people",
            "limits",
            "workers",
            "floor s",
            "N ÷ rate s",
            "delivered s",
            "÷ floor",
            "429s",
            "dups",
            "losses",
            "recap states",
            "longest tick s",
            "other calls",
        ],
        rows,
    )
    lines = [table, ""]
    for r in results:
        if r["ratio_to_floor"] is None:
            verdict = "no floor: every post fits in the first burst" if r["delivered_s"] else "NOT ALL DELIVERED"
        else:
            verdict = "met" if r["ratio_to_floor"] <= 1.1 else "MISSED"
        lines.append(
            f"- **{r['database']}**: {fmt(r['ratio_to_floor'], 2)}x the floor "
            f"({verdict}, goal ≤ 1.1x; the floor is the fake limiter's own best schedule, RateLimits.earliest); "
            f"duplicates {r['duplicates']}, losses "
            f"{r['losses']} ({'met' if r['duplicates'] == 0 and r['losses'] == 0 else 'MISSED'}, goal 0)"
        )
    return "\n".join(lines)


def memory_section(r: dict) -> str:
    rows = [[name, fmt(value)] for name, value in r["rss_mib"].items()]
    return "\n".join(
        [
            markdown_table(["stage", "RSS MiB"], rows),
            "",
            f"- {r['people']:,} people's Preferences held in memory: +{r['preferences_mib']:.1f} MiB "
            f"({r['per_person_kib']:.2f} KiB per person with the engine caches touched); "
            f"loading them all through PeopleService.get took {r['load_all_s']:.2f} s.",
        ]
    )


def channel_section(r: dict) -> str:
    """Issue 20's fast path: channel messages that concern no one, Offhours against a no-op Bolt app."""
    rows = [
        [str(x["round"]), x["app"], fmt(x["acks_per_s"]), fmt(x["ack_p50_ms"]), fmt(x["ack_p99_ms"]),
         fmt(x["cpu_s_per_1000"], 2), str(x["non_200"])]
        for x in r["results"]
    ]  # fmt: skip
    counted = r["statements"]
    cpu = counted["cpu_ms_per_event"]
    median = r["ratio_median"]
    verdict = "met" if median is not None and median >= 0.9 else "MISSED"
    ratios = ", ".join(f"{x:.2f}" for x in r["ratios"])
    return "\n".join(
        [
            markdown_table(["round", "app", "acks/s", "ack p50 ms", "p99 ms", "CPU s / 1000 ev", "non-200"], rows),
            "",
            f"- acks/s, Offhours ÷ no-op Bolt, per round: {ratios}; median {median:.2f}x ({verdict}, goal ≥ 0.9x)",
            f"- database statements per such event: {counted['statements_per_event']:.3f} "
            f"({counted['statements']} over {counted['events']:,} events, SQLAlchemy before_cursor_execute; goal 0); "
            f"Web API calls: {sum(v for k, v in counted['web_api_calls'].items() if not k.startswith('bench.'))}",
            f"- CPU per event in one process, no sockets (best of 3, alternated): no-op Bolt {cpu['noop']:.3f} ms, "
            f"Offhours {cpu['offhours']:.3f} ms",
        ]
    )


def scale_out_section(r: dict) -> str:
    """Issue 23 item 4: one process against two web processes and a worker, on PostgreSQL."""
    rows = [
        [x["config"], " + ".join(x["processes"]), fmt(x["replies_per_s"]), fmt(x["ack_p50_ms"]), fmt(x["ack_p99_ms"]),
         x["non_200"], f"{x['copies_in_flight_together']}/{x['delivered_twice']}", json.dumps(x["posts_per_dm"]),
         x["records"], json.dumps(x["reply_states"]), x["duplicates"], x["losses"], fmt(x["commits_per_dm"], 2),
         fmt(x["rows_written_per_dm"], 2), fmt(x["app_cpu_ms_per_dm"], 2), fmt(x["postgres_cpu_ms_per_dm"], 2)]
        for x in r["results"]
    ]  # fmt: skip
    headers = ["config", "processes", "replies/s", "ack p50 ms", "p99 ms", "non-200", "copies together",
               "posts per DM", "records", "replies", "dups", "losses", "commits / DM", "rows written / DM",
               "app CPU ms / DM", "PG CPU ms / DM"]  # fmt: skip
    lines = [markdown_table(headers, rows), ""]
    by = {x["config"]: x for x in r["results"]}
    one, split = (by.get(c, {}).get("replies_per_s") for c in ("one", "split"))
    if one and split:
        load = r["load_average"]
        lines.append(f"- two web + one worker ÷ one process: {split / one:.2f}x replies/s "
                     f"(load average {load['before']} → {load['after']})")  # fmt: skip
    census = r.get("statements")
    if census:
        ack = ", ".join(f"{k} {v:g}" for k, v in census["before_the_ack"].items())
        sender = ", ".join(f"{k} {v:g}" for k, v in census["reply_sender"].items())
        lines.append(
            f"- per DM, in one process ({census['dms']} DMs one at a time, then one drain; bench/dm_statements.py): "
            f"before the ack {ack}; the reply sender {sender}; the server counted "
            f"{census['server_commits_per_dm']:.2f} commits per DM (reads in autocommit and pool pings included)"
        )
    rate = r.get("commit_rate") or {}
    if "record" in rate:
        lines.append(
            f"- this machine's PostgreSQL, pgbench -c {rate['clients']} -T {rate['seconds']}: the DM record "
            f"transaction {rate['record']['tps']:,.0f}/s, a one-row INSERT {rate['one_insert']['tps']:,.0f}/s, "
            f"a read-only SELECT {rate['select']['tps']:,.0f}/s"
        )
    elif rate:
        lines.append(f"- commit rate not measured: {rate.get('skipped')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke test)")
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL (database bench8 on 127.0.0.1)")
    parser.add_argument("--out", help="where to write the report (default: bench/RESULTS.md; --quick: a temp file)")
    args = parser.parse_args(argv)
    quick = ["--quick"] if args.quick else []
    started = time.monotonic()
    info = machine()
    with tempfile.TemporaryDirectory(prefix="offhours-run-") as tmp:
        tmpdir = Path(tmp)
        print("event path", flush=True)
        event_results = []
        summary, _ = run_script("event_path", *quick, json_out=tmpdir / "event.json")
        event_results += summary["results"]
        recipients = summary["recipients"]
        if args.postgres:
            summary, _ = run_script(
                "event_path",
                *quick,
                "--database",
                "postgres",
                "--servers",
                "waitress",
                json_out=tmpdir / "event-pg.json",
            )
            event_results += summary["results"]
        print("fan-out", flush=True)
        fanout_results = [run_script("fanout", *quick, json_out=tmpdir / "fanout.json")[0]]
        if args.postgres:
            fanout_results.append(
                run_script("fanout", *quick, "--database", "postgres", json_out=tmpdir / "fanout-pg.json")[0]
            )
        print("engine", flush=True)
        _, engine_text = run_script("engine", *quick)
        print("memory", flush=True)
        memory_result, _ = run_script("memory", *quick, json_out=tmpdir / "memory.json")
        print("channel path", flush=True)
        channel_result, _ = run_script("channel_path", *quick, json_out=tmpdir / "channel.json")
        scale_result = None
        if args.postgres:
            print("scale-out", flush=True)
            scale_result, _ = run_script("scale_out", *quick, json_out=tmpdir / "scale-out.json")
    elapsed = time.monotonic() - started
    n_events = event_results[0]["events"]
    report = f"""# Benchmark results

Written by `python bench/run.py{" --quick" if args.quick else ""}{" --postgres" if args.postgres else ""}` on \
{datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {elapsed:.0f} s. See bench/README.md for what each figure means.

## Machine

{markdown_table(["", ""], info.items())}

The machine is shared: other engineers' test suites ran during this run, so every figure is noisy (expect ±20 %
or worse between runs). The load generator, the fake Slack and the server under test share the same cores.

## 1. Event path

{n_events:,} signed after-hours `message.im` events from {n_events:,} distinct senders to {recipients:,} connected
recipients, concurrency 16 (keep-alive http.client connections), server in its own process, fake Slack in its own
process. "replies/s" = N ÷ (time from the first request to the N-th auto-reply reaching the fake Slack).
CPU and peak RSS are the server process's (/proc; for gunicorn, master + worker).

{event_section(event_results)}

## 2. Morning fan-out

Every person has one after-hours DM waiting, all due within the same minute; `RecapSender.tick(now)` runs in a loop
(at most every 0.2 s) with `now` moving with real time. The fake Slack enforces 1 `chat.postMessage` per second per
channel and a workspace rate over a sliding 60 s window, with 429 + Retry-After. Floor = N ÷ workspace rate.
Duplicates and losses are counted per channel at the fake.

{fanout_section(fanout_results)}

## 3. Engine (bench/engine.py)

```
{engine_text}
```

## 4. Memory

{memory_section(memory_result)}

## 5. Channel path (bench/channel_path.py, issue 20)

Signed `message.channels`/`message.groups`/`message.mpim` events that concern no one (plain text, mentions of people
nobody watches, @here, a watched person's id in a code span, group DMs of others) while {channel_result["watched"]:,}
people are watched (connected with the mention scopes, mentions on, off hours), concurrency 16. Offhours as
`python -m bot web` serves it, against a bare Bolt app whose `message` listener does nothing, on waitress with the
same threads and limits; rounds alternate the two apps.

{channel_section(channel_result)}
"""
    if scale_result is not None:
        report += f"""
## 6. Scale-out on PostgreSQL (bench/scale_out.py, issue 23)

{scale_result["results"][0]["events"]:,} signed after-hours DMs from distinct senders at concurrency 16, round-robin
over the web processes, {scale_result["duplicate_share"]:.0%} of them delivered a second time (x-slack-retry-num 1)
to the other web process while the first copy is in flight; real `python -m bot` processes, a database each.

{scale_out_section(scale_result)}
"""
    out = Path(args.out) if args.out else (None if args.quick else BENCH / "RESULTS.md")
    if out is None:
        out = Path(tempfile.gettempdir()) / "offhours-bench-quick.md"
    if out.exists() and NOTES_MARKER in out.read_text():
        report += "\n" + NOTES_MARKER + out.read_text().split(NOTES_MARKER, 1)[1]  # hand-written analysis stays
    out.write_text(report)
    print(f"wrote {out} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
