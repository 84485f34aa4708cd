"""The logs over a whole day of Offhours: one logfmt line per handled event with its outcome and latency, and never a
token nor a word of anyone's message, even with recap.include_text on (the text is stored and shown in the recap).

Everything is captured: Offhours' own loggers at DEBUG, the libraries (Bolt, slack_sdk, waitress...) at INFO. The
same records as OFFHOURS_LOG_FORMAT=json prints them parse as one JSON object each, with the logfmt fields. And every
other test's log lines are checked too (tests/support/logscan.py): the last tests here show that check is on.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.config import Config
from bot.logs import LOG_DATE_FORMAT, LOG_FORMAT, JsonFormatter, configure_logging
from bot.workers.recaps import RecapSender
from bot.workers.replies import ReplySender
from tests.support import logscan
from tests.support.helpers import RunningServer, block_text
from tests.support.oauth import BOT_TOKEN, oauth_answer, redirect, start_install
from tests.support.slackhttp import SlackHTTP, dm_channel

# Distinctive enough that finding it anywhere in the logs can only mean a leak.
SECRET_TEXT = "zebra-quartz-7731 please call the lawyer about the merger"
CHANNEL = dm_channel("U1", "U2")
LOGFMT = re.compile(r"[a-z_]+=[^\s=]+")


@pytest.fixture
def app_server(make_app) -> Iterator[RunningServer]:
    app = make_app(recap=replace(Config().recap, include_text=True))
    running = RunningServer(app)
    yield running
    running.close()


@pytest.fixture
def logs(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="bot")
    caplog.set_level(logging.INFO, logger="bot.bolt")  # Bolt's own logger: a library, at production's ceiling
    return caplog


def formatted(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every captured record as production prints it (bot.logs.LOG_FORMAT), tracebacks included."""
    formatter = logging.Formatter(LOG_FORMAT, datefmt=LOG_DATE_FORMAT)
    return [formatter.format(record) for record in caplog.records]


def fields(line: str) -> dict[str, str]:
    """A logfmt line as a dict; fails unless every part is key=value, but for the message's first word (`event`,
    `command`, `reply`...), which logfmt parsers read as a key without a value: it is returned as `kind`."""
    parts = shlex.split(line)
    header, kind, rest = parts[:3], parts[3], parts[4:]
    bad = [part for part in header + rest if not LOGFMT.fullmatch(part)]
    assert not bad, f"not key=value: {bad} in {line!r}"
    assert re.fullmatch(r"[a-z_]+", kind), line
    return {"kind": kind, **dict(part.split("=", 1) for part in header + rest)}


def test_one_parseable_line_per_event_and_no_tokens_or_message_text(app_server, logs, fake_slack, store, clock):
    services = app_server.app.services
    slack = SlackHTTP(app_server.url)
    fake_slack.oauth_codes["code-1"] = oauth_answer("U1", with_bot=True)
    fake_slack.tokens[BOT_TOKEN] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1"}
    fake_slack.tokens["xoxp-oauth-U1"] = {"team_id": "T1", "user_id": "U1"}
    fake_slack.add_user("U1", tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")
    fake_slack.dm_members[CHANNEL] = ("U1", "U2")

    # Connect (the real OAuth flow), then set hours: Tue 3 Mar 22:00 in New York, after hours.
    install = start_install(app_server.url)
    assert redirect(app_server.url, cookie=install.cookie, code="code-1", state=install.state).status == 200
    assert slack.command("set mon-fri 9-17:30", user="U1").status == 200

    # An after-hours DM is replied to, a second one from the same sender throttled, a bot's message ignored.
    ts = clock().timestamp()
    assert slack.dm(sender="U2", recipient="U1", ts=ts, text=SECRET_TEXT).status == 200
    assert slack.dm(sender="U2", recipient="U1", ts=ts + 60, text=SECRET_TEXT + " (again)").status == 200
    assert slack.dm(sender="U2", recipient="U1", ts=ts + 120, text=SECRET_TEXT, bot_id="B9").status == 200
    sender = ReplySender(services)
    try:
        assert sender.drain(now=clock()) == 1
    finally:
        sender.stop()

    # Wednesday 09:01: the recap (with the message text, include_text is on) goes out; a DM now is in hours.
    morning = clock.advance(hours=11, minutes=1)
    assert RecapSender(services).tick(morning) == 1
    [recap] = [c for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == "U1"]
    assert "zebra-quartz-7731" in block_text(recap.params["blocks"])  # the text was there to be leaked
    during = (morning + timedelta(minutes=30)).timestamp()
    assert slack.dm(sender="U2", recipient="U1", ts=during, text=SECRET_TEXT).status == 200

    lines = formatted(logs)
    everything = "\n".join(lines)
    assert "xoxp-" not in everything and "xoxb-" not in everything and "xapp-" not in everything
    assert "client-secret" not in everything
    for word in ("zebra", "quartz", "lawyer", "merger"):
        assert word not in everything

    # One line per handled event, each a full logfmt line with the outcome and the latency.
    handled = [fields(line) for line in lines if "outcome=" in line and "latency_ms=" in line]
    messages = [f for f in handled if f["kind"] == "event" and f["type"] == "message"]
    assert [f["outcome"] for f in messages] == ["replied", "throttled", "ignored:bot", "ignored:working"]
    commands = [f for f in handled if f["kind"] == "command"]
    assert [(f["sub"], f["outcome"]) for f in commands] == [("set", "ok")]
    for f in handled:
        assert set(f) >= {"time", "level", "logger", "outcome", "latency_ms"}
        assert float(f["latency_ms"]) >= 0
    assert all(f["team"] == "T1" and f["event_id"].startswith("Ev") for f in messages)

    # The connection, the reply and the recap are logged by outcome too, with ids rather than content.
    others = {(f["kind"], f["outcome"]) for line in lines if "outcome=" in line for f in [fields(line)]}
    assert {("reply", "sent"), ("recap", "sent")} <= others
    assert "install: connected team=T1 user=U1" in everything

    # OFFHOURS_LOG_FORMAT=json: the same records, one JSON object each, the logfmt fields as its own fields.
    records = logs.records[: len(lines)]  # the ones `lines` was made of
    as_json = [JsonFormatter().format(record) for record in records]
    assert all("\n" not in line for line in as_json)  # one line each, tracebacks included
    objects = [json.loads(line) for line in as_json]
    for record, obj, line in zip(records, objects, lines, strict=True):
        assert obj["level"] == record.levelname and obj["logger"] == record.name
        assert obj["message"] == record.getMessage()
        assert obj["time"].endswith("+00:00")
        if "outcome=" in line and "latency_ms=" in line:
            logfmt = fields(line)
            assert {k: obj[k] for k in logfmt if k not in ("kind", "time", "level", "logger")} == {
                k: v for k, v in logfmt.items() if k not in ("kind", "time", "level", "logger")
            }
    replied = [o for o in objects if o.get("type") == "message" and o.get("outcome") == "replied"]
    assert len(replied) == 1 and replied[0]["team"] == "T1" and float(replied[0]["latency_ms"]) >= 0
    joined = "\n".join(as_json)
    for word in ("zebra", "quartz", "lawyer", "merger", "xoxp-", "xoxb-", "client-secret"):
        assert word not in joined


def test_configure_logging_picks_the_format_from_the_environment(monkeypatch):
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = []  # basicConfig does nothing while the root has handlers (pytest's own are put back below)
    try:
        configure_logging(environ={"OFFHOURS_LOG_FORMAT": "json"})
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        root.handlers = []
        configure_logging(environ={})
        assert root.handlers[0].formatter._fmt == LOG_FORMAT
        assert logging.getLogger("slack_sdk").level == logging.WARNING
    finally:
        root.handlers = saved
        root.setLevel(logging.INFO)


def test_the_suite_wide_scan_is_on_and_catches_each_kind_of_leak():
    logging.getLogger("bot.test").info("a harmless line team=T1 outcome=ok")
    assert logscan.collected() >= 1  # the scan sees this test's own lines
    logscan.watch("pelican-harbour-9902 our quarterly numbers")
    found = logscan.leaks([
        "reply id=1 token=xoxp-1-2-3 outcome=sent",
        "oauth failed with secret test-signing-secret",
        "event text=pelican-harbour-9902 our quarterly numbers",
        "event type=message outcome=replied team=T1",
    ])  # fmt: skip
    assert len(found) == 3
    assert all("xoxp-1-2-3" not in f and "pelican-harbour" not in f for f in found)  # the report leaks nothing


@pytest.mark.parametrize("fault", ["refused", "timeout"])
def test_a_refused_or_failed_oauth_code_is_in_no_line_but_bolts_own(app_server, logs, fake_slack, fault):
    """The code in the redirect is a credential until Slack refuses it; oauth.v2.access carries the client secret.
    Offhours' own loggers (bot.slack.app and every other bot.* one, at DEBUG) name the failure, never them; nor
    do the libraries' (slack_sdk, waitress, at INFO).
    bot.bolt, the logger Offhours hands Bolt, is left to the test of the filter that redacts Bolt's own lines."""
    code = "oauthcode-6630-refused"
    if fault == "timeout":
        fake_slack.fail("oauth.v2.access", disconnect=True)
    install = start_install(app_server.url)
    response = redirect(app_server.url, cookie=install.cookie, code=code, state=install.state)
    assert response.status < 500
    calls = fake_slack.calls_to("oauth.v2.access")  # after a dropped connection, slack_sdk tries once more
    assert calls and all(call.params["code"] == code for call in calls)  # it was there to be leaked

    ours = [r for r in logs.records if not r.name.startswith("bot.bolt")]  # slack_sdk and waitress included
    lines = "\n".join(logging.Formatter(LOG_FORMAT).format(r) for r in ours)
    assert "install: failed" in lines or "install: oauth.v2.access failed" in lines
    assert code not in lines and "6630" not in lines
    assert "client-secret" not in lines and "xoxp-" not in lines and "xoxb-" not in lines
    for record in ours:
        assert code not in repr(record.args)
