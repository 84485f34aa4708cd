"""The Web API client's connection pool (bot/slack/client.py PooledWebClient), against the fake Slack over HTTP:
connections are reused, and every failure means what it meant through urllib (request_error: sent or not)."""

from __future__ import annotations

import socket
import urllib.error

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.client import PooledWebClient, request_error, sending_client
from tests.support.fakeslack import FakeSlack


@pytest.fixture
def fake():
    server = FakeSlack().start()
    server.add_user("U1")
    yield server
    server.stop()


def post(client: WebClient, n: int = 0):
    return client.chat_postMessage(token="xoxb-T1", channel="C1", text=f"hello {n}")


def test_calls_share_one_connection_where_urllib_opened_one_each(fake):
    pooled = PooledWebClient(base_url=fake.base_url, timeout=5)
    for n in range(20):
        assert post(pooled, n)["ok"] is True
    assert fake.connections == 1
    plain = WebClient(base_url=fake.base_url, timeout=5)
    for n in range(5):
        post(plain, n)
    assert fake.connections == 1 + 5
    assert len(fake.calls_to("chat.postMessage")) == 25


def test_the_clients_made_for_sending_share_the_pool(fake):
    pooled = PooledWebClient(base_url=fake.base_url, timeout=5)
    quick = sending_client(pooled, timeout=1)
    assert isinstance(quick, PooledWebClient) and quick.pool is pooled.pool and quick.timeout == 1
    post(pooled)
    post(quick)
    assert fake.connections == 1


def test_slacks_refusals_read_as_before_429_with_retry_after_and_error_codes(fake):
    client = PooledWebClient(base_url=fake.base_url, timeout=5)
    fake.fail("chat.postMessage", status=429, retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        post(client)
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    fake.fail("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as refused:
        post(client)
    assert (refused.value.response.status_code, refused.value.response["error"]) == (200, "channel_not_found")
    fake.fail("chat.postMessage", status=500)
    with pytest.raises(SlackApiError) as broken:
        post(client)
    assert broken.value.response.status_code == 500
    assert post(client)["ok"] is True  # and the connection still serves


def test_a_connection_refused_was_never_sent_a_drop_after_sending_may_have_been(fake):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    # No retry handlers: as the senders' clients (sending_client), so each failure is seen as it is
    refused = PooledWebClient(base_url=f"http://127.0.0.1:{port}/api/", timeout=2, retry_handlers=[])
    with pytest.raises(urllib.error.URLError) as not_sent:
        post(refused)
    assert request_error(not_sent.value).maybe_posted is False

    client = PooledWebClient(base_url=fake.base_url, timeout=5, retry_handlers=[])
    fake.fail("chat.postMessage", disconnect=True, after_acting=True, status=500)
    with pytest.raises(OSError) as dropped:
        post(client)
    assert not isinstance(dropped.value, urllib.error.URLError)
    assert request_error(dropped.value).maybe_posted is True
    assert len(fake.calls_to("chat.postMessage")) == 1  # Slack did get it: hence "may have posted"


def test_a_read_timeout_may_have_posted(fake):
    client = PooledWebClient(base_url=fake.base_url, timeout=0.3, retry_handlers=[])
    fake.fail("chat.postMessage", delay=1.0)
    with pytest.raises(TimeoutError) as timed_out:
        post(client)
    assert request_error(timed_out.value).maybe_posted is True
