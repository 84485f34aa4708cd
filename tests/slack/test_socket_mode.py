"""Socket Mode end to end: the app connects through the fake Web API's apps.connections.open to a fake Socket Mode
endpoint (a real WebSocket server), which sends envelopes like Slack's and records the acks.

The clock starts on Tue 3 Mar 2026 22:00 in New York; U1 is connected (Mon–Fri 09:00–17:30), U2 writes from Rome.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.domain.errors import ConfigError
from bot.slack.blocks.recap import DONE_ACTION
from bot.slack.socket_mode import start_socket_mode
from bot.storage import db
from bot.workers.replies import ReplySender
from tests.support.fakesocket import FakeSocketMode
from tests.support.helpers import block_text, connect
from tests.support.slackhttp import dm_channel, request

APP_TOKEN = "xapp-1-A1-socket-test"
CHANNEL = dm_channel("U1", "U2")


@pytest.fixture
def fake_socket(fake_slack) -> Iterator[FakeSocketMode]:
    fake = FakeSocketMode().start()
    fake_slack.socket_url = fake.url
    yield fake
    fake.stop()


@pytest.fixture
def socket_mode(offhours, fake_socket) -> Iterator[SocketModeHandler]:
    handler = start_socket_mode(offhours, app_token=APP_TOKEN)
    fake_socket.wait_connected()
    yield handler
    stop(handler, fake_socket)


def stop(handler: SocketModeHandler, fake: FakeSocketMode) -> None:
    # close() alone waits out the client's blocking 3-second recv; hanging up from the fake's side first ends
    # that recv at once (and no reconnecting in between). The SDK signals nothing when its receiving thread has
    # dropped the socket, and closing it concurrently races (AttributeError on None): poll for it, bounded.
    handler.client.auto_reconnect_enabled = False
    fake.hang_up()
    deadline = time.monotonic() + 5
    while handler.client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.01)
    handler.close()


@pytest.fixture
def u1(offhours, store, fake_slack) -> str:
    token = connect(store, fake_slack, "U1")
    offhours.services.people.ensure("T1", "U1", profile_tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")
    fake_slack.dm_members[CHANNEL] = ("U1", "U2")
    return token


def event_callback(event: dict, *, authorized: str, event_id: str = "Ev000001") -> dict:
    return {
        "token": "legacy-verification-token",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(float(event["ts"])),
        "event": event,
        "authorizations": [{"team_id": "T1", "user_id": authorized, "is_bot": False, "enterprise_id": None}],
        "is_ext_shared_channel": False,
    }


def dm(*, ts: float, text: str = "are you there?") -> dict:
    event = {"type": "message", "channel": CHANNEL, "channel_type": "im", "user": "U2", "text": text,
             "ts": f"{ts:.6f}", "event_ts": f"{ts:.6f}"}  # fmt: skip
    return event_callback(event, authorized="U1")


def hours_command(text: str, *, user: str = "U1") -> dict:
    return {
        "token": "legacy",
        "team_id": "T1",
        "team_domain": "example",
        "channel_id": "C1",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/hours",
        "text": text,
        "api_app_id": "A1",
        "is_enterprise_install": "false",
        "response_url": "https://hooks.slack.invalid/commands/1",
        "trigger_id": "123.456",
    }


def test_after_hours_dm_over_the_socket_is_acked_recorded_and_answered(
    socket_mode, fake_socket, u1, offhours, store, fake_slack, clock, caplog
):
    caplog.set_level("INFO")
    # Connected the way Slack's SDK does: apps.connections.open with the app-level token, then the URL it gave.
    [call] = fake_slack.calls_to("apps.connections.open")
    assert call.token == APP_TOKEN
    assert [path.rstrip("?") for path in fake_socket.paths] == ["/link"]
    assert socket_mode.client.is_connected()

    ts = clock().timestamp()
    envelope_id = fake_socket.event(dm(ts=ts))

    ack = fake_socket.wait_for_ack(envelope_id)
    assert ack == {"envelope_id": envelope_id}  # events carry no response payload
    # Listeners run before the ack (process_before_response): the DM is stored once Slack has its ack.
    with store.engine.connect() as conn:
        [message] = conn.execute(sa.select(db.messages)).mappings().all()
    assert (message["recipient_id"], message["sender_id"], message["channel_id"]) == ("U1", "U2", CHANNEL)
    assert message["ts"] == f"{ts:.6f}"

    sender = ReplySender(offhours.services)
    try:
        assert sender.drain(now=clock()) == 1
    finally:
        sender.stop()
    [post] = fake_slack.calls_to("chat.postMessage")
    assert post.token == u1
    assert post.params["channel"] == CHANNEL
    assert post.params["thread_ts"] == f"{ts:.6f}"
    assert post.params["text"].startswith(":crescent_moon: Auto-reply")

    # The Socket Mode client logs neither the app token nor the envelope's content.
    assert "xapp-" not in caplog.text and "xoxp-" not in caplog.text
    assert "are you there" not in caplog.text
    assert "event type=message outcome=replied" in caplog.text


def test_a_redelivered_event_is_acked_and_not_recorded_twice(socket_mode, fake_socket, u1, store, clock):
    body = dm(ts=clock().timestamp())
    first = fake_socket.event(body)
    fake_socket.wait_for_ack(first)
    again = fake_socket.event(body, retry_attempt=1, retry_reason="timeout")
    assert fake_socket.wait_for_ack(again) == {"envelope_id": again}
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.messages)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(db.replies)).scalar_one() == 1


def test_a_refresh_from_slack_reconnects_with_a_new_url_and_events_keep_coming(
    socket_mode, fake_socket, fake_slack, u1, store, clock
):
    fake_socket.refresh()
    fake_socket.wait_connections(2)
    assert len(fake_slack.calls_to("apps.connections.open")) == 2

    envelope_id = fake_socket.event(dm(ts=clock().timestamp()))
    assert fake_socket.wait_for_ack(envelope_id) == {"envelope_id": envelope_id}
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.messages)).scalar_one() == 1


def test_hours_commands_over_the_socket_are_answered_in_the_ack_payload(socket_mode, fake_socket, u1, offhours):
    envelope_id = fake_socket.command(hours_command("set mon-thu 8-16"))

    ack = fake_socket.wait_for_ack(envelope_id)
    payload = ack["payload"]
    assert payload["response_type"] == "ephemeral"
    assert "Your hours are now *Mon–Thu 08:00–16:00*" in payload["text"]
    assert "Mon–Thu 08:00–16:00" in block_text(payload["blocks"])
    assert offhours.services.people.get("T1", "U1").hours_text == "Mon–Thu 08:00–16:00"

    # Someone who has not connected their DMs gets the connect prompt, in the ack too.
    ack = fake_socket.wait_for_ack(fake_socket.command(hours_command("", user="U9")))
    assert ack["payload"]["response_type"] == "ephemeral"
    assert "/slack/install" in block_text(ack["payload"]["blocks"])


def test_connect_links_over_the_socket_use_the_public_base_url(make_app, store, fake_socket, u1):
    """A Socket Mode request has no Host header to take our address from: the link is OFFHOURS_BASE_URL's, which
    load_settings requires with SLACK_APP_TOKEN (tests/system/test_config.py), never http://localhost."""
    app = make_app()
    app.services.settings = replace(app.services.settings, base_url="https://offhours.example.com")
    handler = start_socket_mode(app, app_token=APP_TOKEN)
    fake_socket.wait_connected()
    try:
        ack = fake_socket.wait_for_ack(fake_socket.command(hours_command("", user="U9")))
    finally:
        stop(handler, fake_socket)
    text = json.dumps(ack["payload"]["blocks"])
    assert "https://offhours.example.com/slack/install" in text
    assert "localhost" not in text


def test_interactivity_over_the_socket_is_acked(socket_mode, fake_socket, u1, caplog):
    payload = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "example"},
        "user": {"id": "U1", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy",
        "trigger_id": "123.456",
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "D1"},
        "channel": {"id": "D1"},
        "actions": [{"type": "button", "action_id": DONE_ACTION, "block_id": "b", "value": "x", "action_ts": "1.3"}],
    }
    with caplog.at_level("INFO", logger="bot"):
        ack = fake_socket.wait_for_ack(fake_socket.interaction(payload))
    assert ack["envelope_id"]
    assert "action type=recap_done outcome=invalid" in caplog.text


def test_oauth_pages_are_still_served_over_http_in_socket_mode(socket_mode, server):
    response = request(server.url + "/slack/install")
    assert response.status == 200
    assert "slack.com/oauth/v2/authorize" in response.text


def test_an_app_token_slack_refuses_stops_start_up_with_a_clear_message(offhours, fake_socket, fake_slack):
    fake_slack.fail("apps.connections.open", error="invalid_auth")
    with pytest.raises(ConfigError, match=r"SLACK_APP_TOKEN: Slack refused it for Socket Mode \(invalid_auth\)"):
        start_socket_mode(offhours, app_token=APP_TOKEN)
    assert not fake_socket.connected
