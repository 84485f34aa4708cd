"""tokens_revoked and app_uninstalled, sent the way Slack sends them: the tokens and the data that went with them go."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bot.storage import db
from tests.support.helpers import connect, table_count
from tests.support.slackhttp import SlackHTTP, dm_channel

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
PERSONAL = (db.people, db.profiles, db.messages, db.replies, db.recaps)


def seed(store, user_id: str, *, team_id: str = "T1", other: str = "U9") -> None:
    """One row of every kind Offhours keeps about `user_id`: settings, profile, a recorded DM, a reply, a recap."""
    channel = dm_channel(user_id, other)
    with store.engine.begin() as conn:
        conn.execute(db.people.delete().where(db.people.c.team_id == team_id, db.people.c.user_id == user_id))
        conn.execute(
            db.people.insert().values(team_id=team_id, user_id=user_id, hours="Mon–Fri 09:00–17:00", updated_at=NOW)
        )
        conn.execute(db.profiles.insert().values(team_id=team_id, user_id=user_id, tz="Europe/Rome", fetched_at=NOW))
        conn.execute(db.dm_channels.insert().values(team_id=team_id, channel_id=channel, user_a=user_id, user_b=other))
        conn.execute(
            db.messages.insert().values(
                team_id=team_id,
                recipient_id=user_id,
                channel_id=channel,
                ts="1.1",
                thread_ts="1.1",
                sender_id=other,
                received_at=NOW,
                due_at=NOW,
            )
        )
        conn.execute(
            db.replies.insert().values(
                team_id=team_id,
                recipient_id=user_id,
                sender_id=other,
                window_key="w",
                channel_id=channel,
                message_ts="1.1",
                thread_ts="1.1",
                received_at=NOW,
                next_attempt_at=NOW,
            )
        )
        conn.execute(db.recaps.insert().values(team_id=team_id, user_id=user_id, due_at=NOW, next_attempt_at=NOW))


def rows_about(store, user_id: str, *, team_id: str = "T1") -> dict[str, int]:
    counts = {}
    with store.engine.connect() as conn:
        for table in PERSONAL:
            column = table.c.recipient_id if "recipient_id" in table.c else table.c.user_id
            query = sa.select(sa.func.count()).select_from(table).where(table.c.team_id == team_id, column == user_id)
            counts[table.name] = conn.execute(query).scalar_one()
    return counts


def tokens_in_database(store) -> set[str]:
    with store.engine.connect() as conn:
        found = set()
        for table, columns in ((db.installations, ("bot_token", "user_token")), (db.bots, ("bot_token",))):
            for column in columns:
                found |= {r[0] for r in conn.execute(sa.select(table.c[column])) if r[0]}
    return found


@pytest.fixture
def workspace(store, fake_slack):
    """T1 with U1, U2 and U3 connected and data kept for each; T2 (another workspace) with U1 connected."""
    for user in ("U1", "U2", "U3"):
        connect(store, fake_slack, user)
        seed(store, user)
    connect(store, fake_slack, "U1", team_id="T2")
    seed(store, "U1", team_id="T2")
    return store


def revoked(slack: SlackHTTP, *, oauth: list[str], bot: list[str], team_id: str = "T1"):
    event = {"type": "tokens_revoked", "tokens": {"oauth": oauth, "bot": bot}, "event_ts": "1700000000.000100"}
    return slack.event(event, authorized="UBOT", team_id=team_id)


def test_a_person_revoking_loses_their_token_and_data(slack, workspace):
    response = revoked(slack, oauth=["U1"], bot=[])
    assert response.status == 200
    assert workspace.user_token("T1", "U1") is None
    assert "xoxp-T1-U1" not in tokens_in_database(workspace)
    assert rows_about(workspace, "U1") == dict.fromkeys((t.name for t in PERSONAL), 0)
    # Everyone else, and U1 in the other workspace, are untouched.
    assert workspace.user_token("T1", "U2") == "xoxp-T1-U2"
    assert rows_about(workspace, "U2") == dict.fromkeys((t.name for t in PERSONAL), 1)
    assert workspace.user_token("T2", "U1") == "xoxp-T2-U1"
    assert rows_about(workspace, "U1", team_id="T2") == dict.fromkeys((t.name for t in PERSONAL), 1)
    assert workspace.bot_token("T1") == "xoxb-T1"


def test_several_people_revoking_at_once(slack, workspace):
    revoked(slack, oauth=["U1", "U2"], bot=[])
    assert workspace.connected_user_ids("T1") == {"U3"}
    assert table_count(workspace, db.people, team_id="T1") == 1


def test_a_revoked_person_is_asked_to_connect_again(slack, workspace):
    revoked(slack, oauth=["U1"], bot=[])
    answer = slack.command("show", user="U1")
    assert "/slack/install" in answer.text


def test_the_bot_token_being_revoked_removes_it_everywhere(slack, workspace):
    response = revoked(slack, oauth=[], bot=["UBOT"])
    assert response.status == 200
    assert workspace.bot_token("T1") is None
    assert "xoxb-T1" not in tokens_in_database(workspace)
    assert workspace.bot_token("T2") == "xoxb-T2"


def test_uninstalling_removes_every_token_and_row_of_the_workspace(slack, workspace):
    response = slack.event({"type": "app_uninstalled", "event_ts": "1700000000.000100"}, authorized="UBOT")
    assert response.status == 200
    assert not {t for t in tokens_in_database(workspace) if "-T1" in t}
    with workspace.engine.connect() as conn:
        for table in (*PERSONAL, db.dm_channels, db.installations, db.bots):
            count = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.team_id == "T1"))
            assert count.scalar_one() == 0, table.name
    # The other workspace keeps everything.
    assert workspace.user_token("T2", "U1") == "xoxp-T2-U1"
    assert rows_about(workspace, "U1", team_id="T2") == dict.fromkeys((t.name for t in PERSONAL), 1)


def test_lifecycle_events_are_signed_like_every_other(slack, workspace):
    import json

    body = json.dumps({"type": "event_callback", "team_id": "T1", "event": {"type": "app_uninstalled"}})
    response = slack.post(body, content_type="application/json", signed=False)
    assert response.status == 401
    assert workspace.bot_token("T1") == "xoxb-T1"
