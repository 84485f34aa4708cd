"""The HTTP surface: /healthz, unknown paths, Slack's signature check, and what malformed requests get."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient

from bot.config import Config
from bot.slack.app import create_app
from bot.storage.store import Store
from tests.support.helpers import RunningServer, connect, person_snapshot
from tests.support.slackhttp import request, signed_headers

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_healthz_is_200_when_the_database_answers(server, method):
    response = request(f"{server.url}/healthz", method=method)
    assert response.status == 200
    if method == "GET":
        assert response.json == {"ok": True, "database": "ok"}


def test_healthz_is_503_when_the_database_does_not_answer(settings, fake_slack, clock, tmp_path):
    unreachable = Store(f"sqlite:///{tmp_path / 'no-such-dir' / 'offhours.db'}")
    app = create_app(
        Config(), unreachable, settings=settings, client=WebClient(base_url=fake_slack.base_url), clock=clock
    )
    running = RunningServer(app)
    try:
        response = request(f"{running.url}/healthz")
    finally:
        running.close()
        unreachable.close()
    assert response.status == 503
    assert response.json == {"ok": False, "database": "unreachable"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/nope"), ("GET", "/slack/events"), ("POST", "/slack/other"), ("POST", "/healthz")],
)
def test_unknown_paths_are_404(server, method, path):
    response = request(f"{server.url}{path}", method=method, body=b"" if method == "POST" else None)
    assert response.status == 404


# --- the signature check ------------------------------------------------------------------------------


@pytest.fixture
def connected(store, fake_slack, clock):
    connect(store, fake_slack, "U1")
    fake_slack.reset_calls()
    return person_snapshot(store, "U1")


def command_body(text: str) -> str:
    return urlencode(
        {
            "team_id": "T1",
            "user_id": "U1",
            "command": "/hours",
            "text": text,
            "channel_id": "C1",
            "response_url": "https://hooks.slack.invalid/1",
            "trigger_id": "1.2",
        }
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: {}, id="unsigned"),
        pytest.param(lambda body: signed_headers(body, secret="not-the-secret"), id="wrong-secret"),
        pytest.param(lambda body: signed_headers(body + "&x=1"), id="signature-of-another-body"),
        pytest.param(lambda body: signed_headers(body, timestamp=int(time.time()) - 6 * 60), id="stale"),
        pytest.param(lambda body: signed_headers(body, timestamp=int(time.time()) + 6 * 60), id="from-the-future"),
        pytest.param(
            lambda body: {**signed_headers(body), "X-Slack-Request-Timestamp": "soon"}, id="timestamp-not-a-number"
        ),
    ],
)
def test_badly_signed_requests_are_401_and_change_nothing(slack, store, fake_slack, connected, headers):
    body = command_body("set mon-fri 6-7")
    response = slack.post(body, content_type=FORM, signed=False, extra_headers=headers(body))
    assert response.status == 401
    assert person_snapshot(store, "U1") == connected
    assert fake_slack.calls == []


def test_a_correctly_signed_request_goes_through(slack, store, connected):
    body = command_body("set mon-fri 6-7")
    response = slack.post(body, content_type=FORM)
    assert response.status == 200
    assert person_snapshot(store, "U1")["hours"] == "Mon–Fri 06:00–07:00"


# --- malformed bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ("[1, 2, 3]", "application/json"),
        ('"a string"', "application/json"),
        ("", "application/json"),
        ("payload=%7Bnot-json", FORM),
        ("payload=" + json.dumps({"type": "block_actions"}), FORM),
        ("\xff\xfe garbage", "text/plain"),
        (json.dumps({"type": "event_callback", "event": "not-an-object"}), "application/json"),
    ],
    ids=[
        "broken-json",
        "json-list",
        "json-string",
        "empty",
        "broken-payload",
        "payload-without-ids",
        "garbage",
        "event-not-object",
    ],
)
def test_malformed_signed_bodies_are_4xx_not_5xx(slack, store, connected, body, content_type):
    response = slack.post(body, content_type=content_type)
    assert 400 <= response.status < 500 or response.status == 200, (response.status, response.text)
    assert response.status != 500
    assert person_snapshot(store, "U1") == connected


@pytest.mark.parametrize("body", ["{not json", "[1]", json.dumps({"type": "event_callback", "event": "x"})])
def test_malformed_unsigned_bodies_are_401_the_signature_is_checked_first(slack, body):
    assert slack.post(body, content_type="application/json", signed=False).status == 401


def test_a_body_that_is_not_utf8_is_401(server):
    headers = {"Content-Type": FORM, **signed_headers("payload=x")}
    response = request(f"{server.url}/slack/events", method="POST", body=b"payload=\xff\xfe", headers=headers)
    assert response.status == 401


def test_a_body_over_the_limit_is_refused_before_reading(server):
    body = b"x" * 1_000_001
    response = request(
        f"{server.url}/slack/events", method="POST", body=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413


def test_the_server_keeps_serving_after_bad_requests(slack, store, connected):
    for body in ("{not json", "payload=%7B", ""):
        slack.post(body, content_type="application/json")
    assert slack.command("show", user="U1").status == 200
