"""`python -m bot` as an operator runs it: real processes, real environment variables, a temporary SQLite file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa

from bot.__main__ import main
from tests.support.fakeslack import FakeSlack
from tests.support.oauth import BOT_TOKEN, oauth_answer, redirect, start_install
from tests.support.slackhttp import SIGNING_SECRET, SlackHTTP, request

ROOT = Path(__file__).resolve().parents[2]
SLACK_VARS = ("SLACK_SIGNING_SECRET", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The parent's environment without anything Offhours reads, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OFFHOURS_", "DATABASE_URL", "PORT"))}
    env.update(PYTHONPATH=str(ROOT), OFFHOURS_CONFIG=str(tmp_path / "config.yaml"), **extra)
    (tmp_path / "config.yaml").write_text("")  # the defaults; independent of the checkout's config.yaml
    return env


def run_bot(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_missing_slack_variables_exit_2_with_one_message_naming_them_all(tmp_path):
    result = run_bot(env=clean_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    for name in SLACK_VARS:
        assert name in result.stderr
    assert "README" in result.stderr
    assert result.stderr.count("missing required environment variables") == 1


@pytest.mark.parametrize("command", [[], ["web"], ["run"]])
def test_only_the_missing_variables_are_named(tmp_path, monkeypatch, capsys, command):
    for name in (*SLACK_VARS, "DATABASE_URL", "PORT", "SLACK_API_URL", "OFFHOURS_BASE_URL", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_CLIENT_ID", "111.222")
    monkeypatch.setenv("OFFHOURS_CONFIG", str(tmp_path / "config.yaml"))
    (tmp_path / "config.yaml").write_text("")
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "SLACK_SIGNING_SECRET" in err and "SLACK_CLIENT_SECRET" in err
    assert "SLACK_CLIENT_ID" not in err


def test_migrate_creates_the_schema_in_a_fresh_sqlite_file(tmp_path, monkeypatch, capsys):
    db_file = tmp_path / "fresh.db"
    env = clean_env(tmp_path, DATABASE_URL=f"sqlite:///{db_file}")
    result = run_bot("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    engine = sa.create_engine(f"sqlite:///{db_file}")
    try:
        tables = set(sa.inspect(engine).get_table_names())
        assert {"alembic_version", "people", "slack_installations", "slack_bots", "slack_oauth_states"} <= tables
        with engine.connect() as conn:
            [version] = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
    finally:
        engine.dispose()
    # A second run (in-process, to keep the test fast) is a no-op.
    monkeypatch.setenv("DATABASE_URL", env["DATABASE_URL"])
    monkeypatch.setenv("OFFHOURS_CONFIG", env["OFFHOURS_CONFIG"])
    assert main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out
    engine = sa.create_engine(f"sqlite:///{db_file}")
    try:
        with engine.connect() as conn:
            assert list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()) == [version]
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, *, timeout: float = 30) -> None:
    """Poll /healthz until it answers 200: one of the few waits on a real process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"python -m bot web exited with {process.returncode}: {process.stderr.read()}")
        try:
            if request(f"{url}/healthz").status == 200:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    raise AssertionError(f"/healthz did not answer within {timeout} s")


def test_web_serves_install_connect_and_hours_then_stops_on_sigterm(tmp_path, fake_slack: FakeSlack):
    port = free_port()
    env = clean_env(
        tmp_path,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_CLIENT_ID="111.222",
        SLACK_CLIENT_SECRET="client-secret",
        SLACK_API_URL=fake_slack.base_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'offhours.db'}",
        PORT=str(port),
        OFFHOURS_HOST="127.0.0.2",  # Linux routes all of 127/8 to loopback: a second address to tell binds apart
    )
    fake_slack.oauth_codes["code-1"] = oauth_answer("U1", with_bot=True)
    fake_slack.tokens[BOT_TOKEN] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    fake_slack.add_user("U1", tz="Europe/Rome")
    url = f"http://127.0.0.2:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "web"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_health(url, process)
        with pytest.raises(ConnectionRefusedError):  # listening on OFFHOURS_HOST only
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        # Install through the real process: its OAuth calls go to SLACK_API_URL, i.e. the fake.
        install = start_install(url)
        assert parse_qs(urlparse(install.authorize_url).query)["client_id"] == ["111.222"]
        assert redirect(url, cookie=install.cookie, code="code-1", state=install.state).status == 200
        assert len(fake_slack.calls_to("oauth.v2.access")) == 1
        answer = SlackHTTP(url).command("tz Asia/Tokyo", user="U1")
        assert answer.status == 200
        assert "Asia/Tokyo" in answer.text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"serving host=127.0.0.2 port={port}" in stderr
    for secret in ("xoxb-", "xoxp-", "client-secret", SIGNING_SECRET):
        assert secret not in stderr  # no tokens or secrets in the logs


@pytest.mark.parametrize("host", ["192.0.2.1", "no-such-host.invalid", "in-use"])
def test_an_address_it_cannot_listen_on_exits_2_before_starting_anything(tmp_path, fake_slack: FakeSlack, host):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1] if host == "in-use" else free_port()
        env = clean_env(
            tmp_path, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_CLIENT_ID="111.222", SLACK_CLIENT_SECRET="s",
            SLACK_API_URL=fake_slack.base_url, DATABASE_URL=f"sqlite:///{tmp_path / 'offhours.db'}", PORT=str(port),
            OFFHOURS_HOST="127.0.0.1" if host == "in-use" else host,
        )  # fmt: skip
        result = run_bot("web", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on OFFHOURS_HOST={env['OFFHOURS_HOST']} PORT={port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "serving" not in result.stderr and "reply sender" not in result.stderr


def test_help_describes_every_command(capsys):
    from bot.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "web", "scheduler", "migrate", "check", "manifest", "hours"):
        assert f"\n  {command} " in out, command


def test_config_yaml_documents_only_options_that_exist():
    text = (Path(__file__).resolve().parents[2] / "config.yaml").read_text(encoding="utf-8")
    assert "--config" not in text  # there is no such option: the file is chosen by $OFFHOURS_CONFIG
    assert "$OFFHOURS_CONFIG" in text
