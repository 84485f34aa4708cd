"""A database Offhours cannot open, as an operator meets it: each command names the problem and exits 2, no
traceback (real processes, real environment variables)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.slackhttp import SIGNING_SECRET

ROOT = Path(__file__).resolve().parents[2]


def unused_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused_postgres_url() -> str:
    return f"postgresql+psycopg://offhours:s3cret-pw@127.0.0.1:{unused_port()}/offhours"


def run_bot(command: str, *, database_url: str, tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OFFHOURS_", "DATABASE_URL", "PORT"))}
    (tmp_path / "config.yaml").write_text("")
    env.update(
        PYTHONPATH=str(ROOT),
        OFFHOURS_CONFIG=str(tmp_path / "config.yaml"),
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_CLIENT_ID="111.222",
        SLACK_CLIENT_SECRET="client-secret",
        SLACK_API_URL="http://127.0.0.1:9/api/",  # never called: start-up stops before
        PORT=str(unused_port()),
        OFFHOURS_HOST="127.0.0.1",
        DATABASE_URL=database_url,
    )
    env.update(extra)
    args = [] if command == "run" else [command]
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


CASES = [
    # (id, command, url, what the message must say)
    ("refused-postgres-run", "run", None, ["DATABASE_URL", "cannot open the database", "Connection refused"]),
    ("refused-postgres-web", "web", None, ["DATABASE_URL", "cannot open the database", "Connection refused"]),
    ("refused-postgres-scheduler", "scheduler", None, ["DATABASE_URL", "cannot open the database"]),
    ("refused-postgres-migrate", "migrate", None, ["DATABASE_URL", "cannot open the database", "Connection refused"]),
    ("nonsense-migrate", "migrate", "nonsense", ["DATABASE_URL", "expected a database URL", "'nonsense'"]),
    ("nonsense-check", "check", "nonsense", ["DATABASE_URL", "expected a database URL"]),
    ("mysql-check", "check", "mysql://x@y/z", ["DATABASE_URL", "mysql://", "'MySQLdb' is not installed"]),
    ("mysql-migrate", "migrate", "mysql://x@y/z", ["DATABASE_URL", "mysql://", "use SQLite or PostgreSQL"]),
    ("mysql-run", "run", "mysql://x@y/z", ["DATABASE_URL", "mysql://", "use SQLite or PostgreSQL"]),
    (
        "missing-directory-migrate",
        "migrate",
        "sqlite:////nonexistent/dir/x.db",
        ["DATABASE_URL", "unable to open database file", "the directory /nonexistent/dir does not exist"],
    ),
    (
        "missing-directory-run",
        "run",
        "sqlite:////nonexistent/dir/x.db",
        ["DATABASE_URL", "the directory /nonexistent/dir does not exist"],
    ),
]


@pytest.mark.parametrize(("command", "url", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_database_that_cannot_be_opened_is_named_with_exit_2(tmp_path, command, url, expected):
    result = run_bot(command, database_url=url or refused_postgres_url(), tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("offhours: "), result.stderr
    for words in expected:
        assert words in result.stderr, result.stderr
    assert "s3cret-pw" not in result.stderr  # the password is masked
    assert "serving" not in result.stderr and "runtime started" not in result.stderr


@pytest.mark.parametrize("command", ["run", "web", "check"])
def test_socket_mode_without_the_public_url_stops_with_every_problem_named(tmp_path, command):
    """No public URL to send people to: every connect link would say http://localhost:3000. Named at start-up, with
    the other mistakes in the environment, before anything listens or connects."""
    result = run_bot(
        command,
        database_url=f"sqlite:///{tmp_path / 'offhours.db'}",
        tmp_path=tmp_path,
        SLACK_APP_TOKEN="xapp-1-A1-no-base-url",
        OFFHOURS_HOST="not a host",
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("offhours: "), result.stderr
    assert "OFFHOURS_BASE_URL: required with SLACK_APP_TOKEN (Socket Mode)" in result.stderr
    assert "OFFHOURS_HOST: expected an address to listen on" in result.stderr
    assert "xapp-1-A1-no-base-url" not in result.stderr + result.stdout
    assert "serving" not in result.stderr and "socket_mode connected" not in result.stderr
    if command != "check":
        assert not (tmp_path / "offhours.db").exists()  # stopped before the database was opened
