"""Recaps built a batch at a time, with links from the workspace's URL: what each person gets is still only theirs,
a conversation answered after the claim is still left out, and the links are the ones Slack would give.

Real SQLite (or PostgreSQL), the fake Slack over HTTP, the recap sender driven with `tick(now)` / `deliver`.
U1 and the UP.. people are connected (New York, default hours), so their recaps are due Wed 4 Mar 09:00 EST.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.slack.permalinks import message_permalink
from bot.storage import db, schema
from bot.storage.inbox import IncomingRecord
from bot.storage.recaps import RECAP_LEASE
from bot.storage.store import Store
from bot.workers.recaps import RecapSender
from tests.support.helpers import connect, rows
from tests.support.slackhttp import dm_channel

DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 EST
EVENING = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)  # Tue 20:00 EST
BOT_TOKEN = "xoxb-T1"
TEAM_URL = "https://acme.slack.com/"


def record(store: Store, person: str, sender: str, *, at: datetime = EVENING, due: datetime = DUE,
           channel: str | None = None, thread_ts: str | None = None, source: str = "dm") -> str:  # fmt: skip
    """A message for `person` waiting for their recap; returns its ts."""
    ts = f"{at.timestamp():.6f}"
    outcome = store.inbox.record(IncomingRecord(
        team_id="T1", recipient_id=person, sender_id=sender, channel_id=channel or dm_channel(person, sender), ts=ts,
        thread_ts=thread_ts or ts, received_at=at, due_at=due, text=None, window_key="k", reply=False, source=source,
    ), now=at)  # fmt: skip
    assert outcome == "recorded"
    return ts


def posts_to(fake, person: str) -> list:
    return [c for c in fake.calls_to("chat.postMessage") if c.params["channel"] == person]


def items(call) -> list[str]:
    """Each item's first line (sender, count, when, link), in order."""
    return [b["text"]["text"].split("\n")[0] for b in call.params["blocks"] if b["type"] == "section"]


# --- links ------------------------------------------------------------------------------------------------------


def test_a_permalink_from_the_workspace_url_has_the_shape_slack_documents():
    # chat.getPermalink's documented answers, a top-level message and a reply in a thread: "p" and the ts without
    # its dot (all 16 digits: the docs' sample links drop one of the ts they stand for), the thread's ts and the
    # channel for a reply.
    team = "https://ghostbusters.slack.com/"
    top = message_permalink(team, "C1H9RESGA", "1358546515.000008")
    assert top == "https://ghostbusters.slack.com/archives/C1H9RESGA/p1358546515000008"
    reply = message_permalink(team, "C1H9RESGL", "1358546517.000023", thread_ts="1358546515.000008")
    assert reply == (
        "https://ghostbusters.slack.com/archives/C1H9RESGL/p1358546517000023?thread_ts=1358546515.000008&cid=C1H9RESGL"
    )
    # A thread's own first message is top-level (no thread part); a URL without the trailing slash works too.
    assert message_permalink("https://x.slack.com", "C1", "1.000200", thread_ts="1.000200") == (
        "https://x.slack.com/archives/C1/p1000200"
    )


def test_links_are_built_from_the_url_auth_test_gave_once_per_workspace(offhours, store, fake_slack):
    connect(store, fake_slack, "U1")
    fake_slack.tokens[BOT_TOKEN] = {"team_id": "T1", "user_id": "UBOT", "bot_id": "B1", "url": TEAM_URL}
    dm_ts = record(store, "U1", "U2")
    root = f"{(EVENING - timedelta(hours=1)).timestamp():.6f}"
    reply_ts = record(store, "U1", "U3", at=EVENING + timedelta(minutes=5), channel="C1", thread_ts=root,
                      source="mention")  # fmt: skip

    assert RecapSender(offhours.services).tick(DUE) == 1
    [post] = posts_to(fake_slack, "U1")
    lines = items(post)
    assert f"<{TEAM_URL}archives/{dm_channel('U1', 'U2')}/p{dm_ts.replace('.', '')}|Open thread>" in lines[0]
    assert f"<{TEAM_URL}archives/C1/p{reply_ts.replace('.', '')}?thread_ts={root}&cid=C1|Open message>" in lines[1]
    assert fake_slack.calls_to("chat.getPermalink") == []
    assert [c.token for c in fake_slack.calls_to("auth.test")] == [BOT_TOKEN]
    assert [(r["team_id"], r["url"]) for r in rows(store, schema.workspace_urls)] == [("T1", TEAM_URL)]

    # Another process (a new sender) reads the URL from the database: no auth.test again.
    record(store, "U1", "U4", at=DUE + timedelta(minutes=1), due=DUE + timedelta(minutes=2))
    assert RecapSender(offhours.services).tick(DUE + timedelta(minutes=2)) == 1
    assert len(fake_slack.calls_to("auth.test")) == 1
    assert fake_slack.calls_to("chat.getPermalink") == []


def test_while_the_workspace_url_is_unknown_links_are_asked_of_slack(offhours, store, fake_slack):
    connect(store, fake_slack, "U1")  # the bot token is unknown to the fake: auth.test answers invalid_auth
    dm_ts = record(store, "U1", "U2")
    sender = RecapSender(offhours.services)

    assert sender.tick(DUE) == 1
    [link] = fake_slack.calls_to("chat.getPermalink")
    assert (link.token, link.params["channel"], link.params["message_ts"]) == (
        "xoxp-T1-U1", dm_channel("U1", "U2"), dm_ts,
    )  # fmt: skip
    assert (
        f"archives/{dm_channel('U1', 'U2')}/p{dm_ts.replace('.', '')}|Open thread>"
        in items(posts_to(fake_slack, "U1")[0])[0]
    )
    assert rows(store, schema.workspace_urls) == []

    # The next recap minutes later does not ask auth.test again (it is retried after a while), only the link.
    record(store, "U1", "U3", at=DUE + timedelta(minutes=1), due=DUE + timedelta(minutes=2))
    assert sender.tick(DUE + timedelta(minutes=2)) == 1
    assert len(fake_slack.calls_to("auth.test")) == 1
    assert len(fake_slack.calls_to("chat.getPermalink")) == 2


# --- one batch, many people -------------------------------------------------------------------------------------


PEOPLE = [f"UP{i:02d}" for i in range(6)]


def sender_of(person: str) -> str:
    return "US" + person[2:]


def test_recaps_built_in_one_batch_each_hold_only_their_own_persons_conversations_notes_and_promises(
    offhours, store, fake_slack
):
    for person in PEOPLE:
        connect(store, fake_slack, person)
        record(store, person, sender_of(person))
    with store.engine.begin() as conn:
        for person in PEOPLE[::2]:  # an urgent note from their sender, passed on to them
            conn.execute(schema.urgent_notices.insert().values(
                team_id="T1", recipient_id=person, sender_id=sender_of(person), target_id=person, window_key="k",
                reply_id=0, channel_id=dm_channel(person, sender_of(person)), message_ts="1.0", note="n",
                created_at=EVENING + timedelta(minutes=1), state="sent", next_attempt_at=EVENING,
            ))  # fmt: skip
        for person in PEOPLE[:3]:  # a reply-by time today, 11:00 EST
            conn.execute(schema.nudges.insert().values(
                team_id="T1", user_id=person, sender_id=sender_of(person), channel_id=dm_channel(person,
                sender_of(person)), message_ts="1.0", thread_ts="1.0", received_at=EVENING,
                promised_at=DUE + timedelta(hours=2), planned_at=EVENING, next_attempt_at=DUE + timedelta(hours=1),
            ))  # fmt: skip

    assert RecapSender(offhours.services).tick(DUE) == len(PEOPLE)
    for person in PEOPLE:
        [post] = posts_to(fake_slack, person)
        [line] = items(post)
        assert f"<@{sender_of(person)}>" in line, person
        assert not any(f"<@{sender_of(other)}>" in line for other in PEOPLE if other != person)
        assert ("*Urgent* (sent to you)" in line) == (person in PEOPLE[::2]), person
        assert ("reply by 11:00 today" in line) == (person in PEOPLE[:3]), person
    for recap in rows(store, db.recaps):
        held = rows(store, db.messages, recap_id=recap["id"])
        assert [(m["recipient_id"], m["sender_id"]) for m in held] == [(recap["user_id"], sender_of(recap["user_id"]))]


# --- the re-check between claim and post ------------------------------------------------------------------------


@pytest.mark.parametrize("answered", [["U2"], ["U2", "U3"]])
def test_a_conversation_answered_between_the_claim_and_the_post_is_left_out(offhours, store, fake_slack, answered):
    connect(store, fake_slack, "U1")
    record(store, "U1", "U2")
    record(store, "U1", "U3", at=EVENING + timedelta(minutes=1))
    [(team_id, user_id, due_at)] = store.recaps.due_people(now=DUE)
    claim = store.recaps.claim_new(team_id, user_id, due_at=due_at, now=DUE)
    assert claim is not None
    for sender in answered:  # U1 writes in that DM after the claim, before the post
        assert store.inbox.mark_answered("T1", "U1", dm_channel("U1", sender)) == 1

    posted = RecapSender(offhours.services).deliver(claim, now=DUE)
    if answered == ["U2"]:
        assert posted is True
        [post] = posts_to(fake_slack, "U1")
        assert [line.split(" · ")[0] for line in items(post)] == ["<@U3>"]
    else:
        assert posted is False  # nothing left unanswered: no recap at all
        assert posts_to(fake_slack, "U1") == []
        assert [r["state"] for r in rows(store, db.recaps)] == ["empty"]


def test_a_claim_made_late_in_a_long_tick_is_leased_from_when_it_was_made(offhours, store, fake_slack, clock):
    """A morning of many recaps keeps one tick going for minutes: its later claims must not be born with a lease
    counted from the tick's start (already half over, or over, when they are made)."""
    connect(store, fake_slack, "U1")
    record(store, "U1", "U2")
    clock.set(DUE + timedelta(minutes=6))  # the tick that started at DUE is still claiming
    claims = RecapSender(offhours.services).kind.claims(lambda: DUE, lambda: None)
    claimed_at, [claim] = next(claims)
    claims.close()
    assert claimed_at == DUE + timedelta(minutes=6)
    assert claim.leased_until == DUE + timedelta(minutes=6) + RECAP_LEASE


def test_one_recap_that_cannot_be_built_holds_back_no_other(offhours, store, fake_slack, monkeypatch):
    """A bug on one person's data makes building their recap fail on every try: everyone else's recap goes out all
    the same, on time, and theirs is retried with a growing backoff (retries are claimed first: one that stayed at
    the head of the queue would stop every recap after it)."""
    connect(store, fake_slack, "U1")
    connect(store, fake_slack, "U2")
    record(store, "U1", "U9")
    later = DUE + timedelta(minutes=1)
    record(store, "U2", "U9", due=later)
    sender = RecapSender(offhours.services)
    real = sender.kind.renderer.build_many

    def build_many(team_id, recaps, **kwargs):
        if any(recap.user_id == "U1" for recap in recaps):
            raise ValueError("a bug in U1's recap")
        return real(team_id, recaps, **kwargs)

    monkeypatch.setattr(sender.kind.renderer, "build_many", build_many)
    assert sender.tick(DUE) == 0
    assert sender.tick(later) == 1
    assert len(posts_to(fake_slack, "U2")) == 1
    assert posts_to(fake_slack, "U1") == []
    [u1] = [r for r in rows(store, db.recaps) if r["user_id"] == "U1"]
    assert u1["state"] == "pending"
    monkeypatch.undo()
    assert sender.tick(later + timedelta(minutes=10)) == 1  # once the bug is fixed, theirs goes out once
    assert len(posts_to(fake_slack, "U1")) == 1
