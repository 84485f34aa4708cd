"""/metrics: the values move with what the app does (a DM, its auto-reply, a recap, Slack's errors), the bearer
token guards the scrape when one is set, and no label ever carries an id or a word of anyone's message.

The clock starts on Tue 3 Mar 2026 22:00 in New York; U1 (New York, Mon–Fri 09:00–17:30) is connected, U2 writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.slack.app import OffhoursApp
from bot.workers.recaps import RecapSender
from bot.workers.replies import ReplySender
from tests.support.helpers import RunningServer, connect
from tests.support.recording import RecordingSlack
from tests.support.slackhttp import Response, request

SECRET_TEXT = "walrus-ostrich-5521 the board meets on friday"
RECAP_DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 in New York


def scrape(url: str, *, token: str | None = None) -> Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return request(f"{url}/metrics", headers=headers)


def samples(url: str, *, token: str | None = None) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    response = scrape(url, token=token)
    assert response.status == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def fake_slack() -> Iterator[RecordingSlack]:
    fake = RecordingSlack().start()  # answers the lookups (conversations.replies, .history) from what it posted
    yield fake
    fake.stop()


@pytest.fixture
def u1(store, fake_slack, offhours: OffhoursApp) -> str:
    connect(store, fake_slack, "U1", tz="America/New_York")
    fake_slack.add_user("U2", tz="Europe/Rome")
    return "U1"


def test_metrics_move_after_a_dm_its_auto_reply_and_the_recap(server, slack, u1, offhours, clock):
    before = samples(server.url)
    assert value(before, "offhours_events_total", type="message", outcome="replied") == 0
    assert value(before, "offhours_pending", kind="auto_reply") == 0

    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp(), text=SECRET_TEXT).status == 200
    queued = samples(server.url)
    assert value(queued, "offhours_events_total", type="message", outcome="replied") == 1
    assert value(queued, "offhours_ack_seconds_count") == 1
    assert 0 < value(queued, "offhours_ack_seconds_sum") < 3
    assert value(queued, "offhours_pending", kind="auto_reply") == 1  # read from the database at the scrape
    assert value(queued, "offhours_pending", kind="recap") == 0  # not due before Wednesday 09:00

    clock.advance(seconds=2)
    sender = ReplySender(offhours.services)
    try:
        assert sender.drain(now=clock()) == 1
    finally:
        sender.stop()
    replied = samples(server.url)
    assert value(replied, "offhours_deliveries_total", kind="auto_reply", result="sent") == 1
    assert value(replied, "offhours_delivery_lag_seconds_count", kind="auto_reply") == 1
    assert value(replied, "offhours_delivery_lag_seconds_sum", kind="auto_reply") == pytest.approx(2, abs=0.01)
    assert value(replied, "offhours_pending", kind="auto_reply") == 0

    clock.set(RECAP_DUE.replace(minute=1))  # Wed 09:01: the recap is a minute overdue
    due = samples(server.url)
    assert value(due, "offhours_pending", kind="recap") == 1
    assert value(due, "offhours_oldest_pending_seconds", kind="recap") == 60
    assert RecapSender(offhours.services).tick(clock()) == 1
    sent = samples(server.url)
    assert value(sent, "offhours_deliveries_total", kind="recap", result="sent") == 1
    assert value(sent, "offhours_delivery_lag_seconds_sum", kind="recap") == 60
    assert value(sent, "offhours_pending", kind="recap") == 0
    assert value(sent, "offhours_deliveries_total", kind="recap", result="failed") == 0

    # Labels name kinds and outcomes, never a person, a workspace or a word of the message.
    text = scrape(server.url).text
    for leak in ("U1", "U2", "T1", "walrus", "ostrich", "xoxp-", "xoxb-"):
        assert leak not in text


def test_slack_refusals_and_rate_limits_are_counted_by_method_and_code(server, slack, u1, offhours, fake_slack, clock):
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    sender = ReplySender(offhours.services)
    try:
        assert sender.drain(now=clock()) == 0  # rescheduled after Retry-After, not waited out
        scraped = samples(server.url)
        assert value(scraped, "offhours_rate_limited_total", method="chat.postMessage") == 1
        assert value(scraped, "offhours_slack_api_errors_total", method="chat.postMessage", error="ratelimited") == 1
        assert value(scraped, "offhours_deliveries_total", kind="auto_reply", result="retried") == 1

        fake_slack.fail("chat.postMessage", error="channel_not_found")  # HTTP 200, "ok": false
        clock.advance(seconds=31)
        assert sender.drain(now=clock()) == 0
    finally:
        sender.stop()
    scraped = samples(server.url)
    assert value(scraped, "offhours_slack_api_errors_total", method="chat.postMessage", error="channel_not_found") == 1
    assert value(scraped, "offhours_deliveries_total", kind="auto_reply", result="failed") == 1
    assert value(scraped, "offhours_rate_limited_total", method="chat.postMessage") == 1


def test_an_auto_reply_found_already_posted_counts_as_looked_up(server, u1, offhours, fake_slack, clock, slack):
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    # Slack posts it, then answers 500: the outcome is unknown, so the retry looks for it first.
    fake_slack.fail("chat.postMessage", status=500, after_acting=True)
    sender = ReplySender(offhours.services)
    try:
        assert sender.drain(now=clock()) == 0
        clock.advance(minutes=15)
        assert sender.drain(now=clock()) == 1  # found by its metadata, not posted again
    finally:
        sender.stop()
    assert len(fake_slack.posts()) == 1
    scraped = samples(server.url)
    assert value(scraped, "offhours_deliveries_total", kind="auto_reply", result="retried") == 1
    assert value(scraped, "offhours_deliveries_total", kind="auto_reply", result="looked_up") == 1
    assert value(scraped, "offhours_deliveries_total", kind="auto_reply", result="sent") == 1
    assert value(scraped, "offhours_slack_api_errors_total", method="chat.postMessage", error="500") == 1


def test_a_recap_whose_connection_dropped_is_retried_then_sent(server, u1, offhours, fake_slack, clock, slack):
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    clock.set(RECAP_DUE)
    recaps = RecapSender(offhours.services)
    fake_slack.fail("chat.postMessage", disconnect=True)
    assert recaps.tick(clock()) == 0
    clock.advance(minutes=15)
    assert recaps.tick(clock()) == 1
    scraped = samples(server.url)
    assert value(scraped, "offhours_deliveries_total", kind="recap", result="retried") == 1
    assert value(scraped, "offhours_deliveries_total", kind="recap", result="sent") == 1
    assert value(scraped, "offhours_delivery_lag_seconds_sum", kind="recap") == 15 * 60
    assert value(scraped, "offhours_slack_api_errors_total", method="chat.postMessage", error="RemoteDisconnected") == 1


@pytest.fixture
def guarded(make_app, settings) -> Iterator[RunningServer]:
    app = make_app()
    app.services.settings = replace(settings, metrics_token="scrape-secret-42")
    running = RunningServer(app)
    yield running
    running.close()


def test_the_scrape_needs_the_bearer_token_when_one_is_set(guarded):
    assert scrape(guarded.url).status == 401
    assert scrape(guarded.url, token="wrong").status == 401
    assert request(f"{guarded.url}/metrics", headers={"Authorization": "scrape-secret-42"}).status == 401
    refused = scrape(guarded.url)
    assert {k.lower(): v for k, v in refused.headers.items()}["www-authenticate"].startswith("Bearer")
    assert "offhours_" not in refused.text
    assert value(samples(guarded.url, token="scrape-secret-42"), "offhours_pending", kind="recap") == 0
    # The probes stay open: a platform's health checks carry no token.
    assert request(f"{guarded.url}/healthz").status == 200
    assert request(f"{guarded.url}/readyz").status == 200


def test_without_a_token_the_scrape_is_open(server):
    assert scrape(server.url).status == 200


def test_two_apps_in_one_process_count_apart(make_app, server, u1, clock, slack):
    other = RunningServer(make_app())
    try:
        assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
        assert value(samples(server.url), "offhours_events_total", type="message", outcome="replied") == 1
        assert value(samples(other.url), "offhours_events_total", type="message", outcome="replied") == 0
    finally:
        other.close()


def test_the_metrics_scrape_survives_the_database_going_away(settings, fake_slack, clock, tmp_path):
    from slack_sdk import WebClient

    from bot.config import Config
    from bot.slack.app import create_app
    from bot.storage.store import Store

    unreachable = Store(f"sqlite:///{tmp_path / 'no-such-dir' / 'offhours.db'}")
    app = create_app(Config(), unreachable, settings=settings, client=WebClient(base_url=fake_slack.base_url),
                     clock=clock)  # fmt: skip
    running = RunningServer(app)
    try:
        response = scrape(running.url)
    finally:
        running.close()
        unreachable.close()
    assert response.status == 200
    assert "offhours_events_total" in response.text or "offhours_events" in response.text
    assert "offhours_pending{" not in response.text  # unknown, so not reported as 0


def test_an_answer_that_is_not_slacks_is_counted_by_its_status_never_its_text(server, slack, u1, offhours, fake_slack,
                                                                                clock):  # fmt: skip
    fake_slack.fail("chat.postMessage", status=502, body=b"<html><h1>502 Bad Gateway</h1> proxy says hi</html>")
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    sender = ReplySender(offhours.services)
    try:
        sender.drain(now=clock())
    finally:
        sender.stop()
    text = scrape(server.url).text
    assert 'offhours_slack_api_errors_total{error="502",method="chat.postMessage"} 1.0' in text
    assert "Bad Gateway" not in text and "proxy" not in text
