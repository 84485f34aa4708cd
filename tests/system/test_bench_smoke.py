"""The benchmarks keep working: each script's --quick mode runs and reports figures (nothing about speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def run_quick(
    script: str, tmp_path: Path, *, env: dict[str, str] | None = None, extra: tuple[str, ...] = ()
) -> tuple[dict | None, str]:
    out = tmp_path / f"{script}.json"
    args = [sys.executable, str(ROOT / "bench" / f"{script}.py"), "--quick", *extra]
    if script != "engine":
        args += ["--json", str(out)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return (json.loads(out.read_text()) if script != "engine" else None), done.stdout


def test_event_path_quick(tmp_path):
    summary, _ = run_quick("event_path", tmp_path)
    by_app = {r["app"]: r for r in summary["results"]}
    assert set(by_app) == {"bare", "recording", "offhours"}
    for result in by_app.values():
        assert result["sent"] == result["events"] == 50
        assert result["replies"] == 50
        assert result["acks_per_s"] > 0 and result["ack_p99_ms"] > 0 and result["cpu_s_per_1000"] >= 0
    assert by_app["recording"]["recorded"] == 50  # the reference really writes each DM


def test_channel_path_quick(tmp_path):
    summary, _ = run_quick("channel_path", tmp_path)
    by_app = {r["app"]: r for r in summary["results"]}
    assert set(by_app) == {"noop", "offhours"}
    for result in by_app.values():
        assert result["sent"] == result["events"] == 50 and result["non_200"] == 0
        assert result["acks_per_s"] > 0
    assert summary["ratios"] and summary["statements"]["events"] == 50
    assert summary["statements"]["statements"] == 0  # the fast path touches no database
    assert summary["statements"]["watched_in_view"] == summary["watched"]  # with people watched, not an empty view
    assert {k for k in summary["statements"]["web_api_calls"] if not k.startswith("bench.")} == set()


def test_fanout_quick(tmp_path):
    summary, _ = run_quick("fanout", tmp_path)
    assert summary["posts"] == summary["people"] == 50
    assert summary["duplicates"] == 0 and summary["losses"] == 0
    assert summary["delivered_s"] is not None


@pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"),
    reason="several processes on one database need PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://...",
)
def test_scale_out_quick(tmp_path):
    # The script makes its own databases beside the one TEST_DATABASE_URL names, and drops them.
    summary, _ = run_quick("scale_out", tmp_path, env={**os.environ, "BENCH_POSTGRES_SERVER": TEST_DATABASE_URL})
    by_config = {r["config"]: r for r in summary["results"]}
    assert set(by_config) == {"one", "split"}
    assert by_config["split"]["processes"] == ["web", "web", "scheduler"]
    for r in by_config.values():
        assert r["sent"] == r["requests"] == r["events"] + r["delivered_twice"] and r["delivered_twice"] == 10
        assert r["non_200"] == 0 and r["replies_per_s"] > 0
        assert r["posts_per_dm"] == {"1": r["events"]} and r["records"] == r["events"]
        assert r["reply_states"] == {"sent": r["events"]}
        assert r["duplicates"] == 0 and r["losses"] == 0
        assert r["logged_outcomes"] == {"replied": r["events"], "duplicate": 10}
        assert set(r["exit_statuses"].values()) == {0} and r["commits_per_dm"] > 0 and r["most_connections"] > 0
    census = summary["statements"]
    assert census["posts"] == census["dms"] + 1  # and a warm-up DM before the count
    assert census["before_the_ack"]["INSERT after_hours_messages"] == 1.0  # each DM recorded before its ack
    assert summary["commit_rate"].get("skipped") or summary["commit_rate"]["record"]["tps"] > 0


def test_claims_quick(tmp_path):
    # SQLite, and PostgreSQL when the run has one (a database of the script's own beside TEST_DATABASE_URL's).
    if TEST_DATABASE_URL.startswith("postgresql"):
        env, databases = {**os.environ, "BENCH_POSTGRES_SERVER": TEST_DATABASE_URL}, ["sqlite", "postgres"]
    else:
        env, databases = None, ["sqlite"]
    summary, _ = run_quick("claims", tmp_path, env=env, extra=("--database", "both" if env else "sqlite"))
    assert [run["database"] for run in summary["runs"]] == databases
    for run in summary["runs"]:
        assert {r["kind"] for r in run["results"]} == {"auto_replies", "recaps"}
        for r in run["results"]:
            phases = ["stale", "analyzed"] if run["database"] == "postgres" else ["sqlite"]
            for revision in ("0012", "0013"):
                assert list(r[revision]) == phases
                for phase in phases:
                    assert r[revision][phase]["claimed"] == 3 * 32 and r[revision][phase]["median_ms"] > 0
                    assert r[revision][phase]["plan"]


def test_engine_quick(tmp_path):
    _, stdout = run_quick("engine", tmp_path)
    assert "next_start" in stdout and "is_working" in stdout


def test_memory_quick(tmp_path):
    summary, _ = run_quick("memory", tmp_path)
    assert summary["people"] == 200 and summary["per_person_kib"] > 0


def test_run_quick_writes_a_report(tmp_path):
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = out.read_text()
    for heading in ("## 1. Event path", "## 2. Morning fan-out", "## 3. Engine", "## 4. Memory", "## 5. Channel path"):
        assert heading in report


def test_inprocess_quick(tmp_path):
    summary, _ = run_quick("inprocess", tmp_path)
    runs = {(r["app"], r["threads"]) for r in summary["results"]}
    assert runs == {("bare", 0), ("offhours", 0), ("bare", 16), ("offhours", 16)}
    for result in summary["results"]:
        assert result["replies"] == result["events"] == 50
        assert result["cpu_ms_per_event"] > 0


def test_profile_summary_splits_the_event_path_into_database_and_rest(tmp_path):
    request = "<module> (bench/inprocess.py:1);SlackRequestHandler.__call__ (slack_bolt/adapter/wsgi/handler.py:9)"
    drain = "run (bench/inprocess.py:2);ReplySender.drain (bot/workers/replies.py:197)"
    bare = tmp_path / "bare.txt"
    bare.write_text(f"{request};post (x.py:1) 40\n<module> (bench/common.py:1);import (y.py:1) 500\n")
    offhours = tmp_path / "offhours.txt"
    offhours.write_text(
        f"{request};DmView.read (bot/storage/dm_view.py:1);Connection.execute (sqlalchemy/engine/base.py:1) 30\n"
        f"{request};post (x.py:1) 40\n"
        f"{drain};ReplyQueue.claim (bot/storage/replies.py:1);writing (bot/storage/engine.py:9) 10\n"
        f"{drain};compose (bot/domain/autoreply.py:1) 10\n"
        "<module> (bench/common.py:1);seed (bench/common.py:5) 900\n"  # start-up: not the event path
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "profile_summary.py"), str(bare), str(offhours), "--top", "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| bare", "| offhours"))]
    assert rows == [
        "| bare | 40 | 0 | 40 | 1.00 | 1.00 |",
        "| offhours | 90 | 40 | 50 | 2.25 | 1.25 |",
    ]
