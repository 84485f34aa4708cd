"""The installation/token store's cache: what this process changes is seen at once, another process's change within
the cache window (BOT_CACHE_SECONDS), and a read that overlapped a change is never kept. Real database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from slack_sdk.oauth.installation_store import Installation

from bot.storage import schema
from bot.storage.store import Store
from bot.storage.tokens import BOT_CACHE_SECONDS
from tests.support.fakeslack import FakeSlack
from tests.support.helpers import connect

NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def installation(*, team_id: str = "T1", bot_token: str, user_id: str = "UADMIN", at: float = 1.0) -> Installation:
    return Installation(
        app_id="A1", enterprise_id=None, team_id=team_id, bot_token=bot_token, bot_id="B1", bot_user_id="UBOT",
        bot_scopes="commands,chat:write", user_id=user_id, installed_at=NOW.timestamp() + at,
    )  # fmt: skip


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def this(store, ticks, migrated):
    """This process's store, with a hand-moved monotonic clock (the `store` fixture's database, wiped)."""
    mine = Store(migrated, client_id="111.222", monotonic=ticks)
    yield mine
    mine.close()


@pytest.fixture
def other(store, migrated):
    """Another process on the same database: its own Store, its own cache."""
    theirs = Store(migrated, client_id="111.222")
    yield theirs
    theirs.close()


def test_a_save_in_this_process_is_seen_at_once(this):
    this.installation_store.save(installation(bot_token="xoxb-old"))
    assert this.bot_token("T1") == "xoxb-old"
    this.installation_store.save(installation(bot_token="xoxb-new", at=2.0))
    assert this.bot_token("T1") == "xoxb-new"
    this.installation_store.save_bot(installation(bot_token="xoxb-bot-only", at=3.0).to_bot())
    assert this.bot_token("T1") == "xoxb-bot-only"


@pytest.mark.parametrize("delete", ["delete_bot", "delete_all"])
def test_a_delete_in_this_process_is_seen_at_once(this, delete):
    this.installation_store.save(installation(bot_token="xoxb-T1"))
    this.installation_store.save(installation(team_id="T2", bot_token="xoxb-T2"))
    assert (this.bot_token("T1"), this.bot_token("T2")) == ("xoxb-T1", "xoxb-T2")
    getattr(this.installation_store, delete)(enterprise_id=None, team_id="T1")
    assert this.bot("T1") is None
    assert this.bot_token("T2") == "xoxb-T2"  # another workspace's answer is untouched


@pytest.mark.parametrize("change", ["forget_team", "revoke_bot_tokens", "forget_person"])
def test_changes_made_outside_bolts_flow_are_seen_at_once(this, change):
    this.installation_store.save(installation(bot_token="xoxb-T1"))
    assert this.bot_token("T1") == "xoxb-T1"
    assert this.installation_store.find_installation(enterprise_id=None, team_id="T1", user_id="UADMIN") is not None
    if change == "forget_person":
        this.forget_person("T1", "UADMIN")  # the workspace's bot stays; the installer's own row goes
        assert this.bot_token("T1") == "xoxb-T1"
    else:
        getattr(this, change)("T1")
        assert this.bot("T1") is None
    found = this.installation_store.find_installation(enterprise_id=None, team_id="T1", user_id="UADMIN")
    if change == "revoke_bot_tokens":  # the installer's row stays, without the bot token
        assert found is not None and found.bot_token is None
    else:
        assert found is None


def test_another_processs_reinstall_is_seen_once_the_cache_window_has_passed(this, other, ticks):
    this.installation_store.save(installation(bot_token="xoxb-old"))
    assert this.bot_token("T1") == "xoxb-old"
    other.installation_store.save(installation(bot_token="xoxb-new", at=2.0))
    assert other.bot_token("T1") == "xoxb-new"
    ticks.now += BOT_CACHE_SECONDS - 0.01
    assert this.bot_token("T1") == "xoxb-old"  # the documented limit: within the window, the cached answer stands
    ticks.now += 0.02
    assert this.bot_token("T1") == "xoxb-new"


def test_another_processs_uninstall_is_seen_once_the_cache_window_has_passed(this, other, ticks):
    this.installation_store.save(installation(bot_token="xoxb-T1"))
    assert this.bot_token("T1") == "xoxb-T1"
    other.forget_team("T1")
    assert this.bot_token("T1") == "xoxb-T1"  # within the window (Slack refuses the token anyway)
    ticks.now += BOT_CACHE_SECONDS + 0.01
    assert this.bot("T1") is None


def test_a_workspace_not_installed_is_asked_again_at_once(this, other):
    assert this.bot("T1") is None
    other.installation_store.save(installation(bot_token="xoxb-T1"))
    assert this.bot_token("T1") == "xoxb-T1"  # no answer was cached for the workspace that was not installed


def test_a_read_that_overlapped_a_save_is_not_kept(this, monkeypatch):
    """A request thread read the old bot just before this process saved a new one: its answer must not be cached
    after the save's invalidation, or this process would serve the replaced token for the whole window."""
    this.installation_store.save(installation(bot_token="xoxb-old"))
    underlying = this.installation_store.underlying
    read = underlying.find_bot
    saved: list[bool] = []

    def read_then_someone_saves(**kwargs):
        bot = read(**kwargs)  # the old row
        if not saved:
            saved.append(True)
            this.installation_store.save(installation(bot_token="xoxb-new", at=2.0))
        return bot

    monkeypatch.setattr(underlying, "find_bot", read_then_someone_saves)
    assert this.bot_token("T1") == "xoxb-old"  # the overlapping read answers what it read
    assert this.bot_token("T1") == "xoxb-new"  # and was not kept


def test_nothing_read_while_a_change_runs_is_kept(this):
    this.installation_store.save(installation(bot_token="xoxb-T1"))
    with this.tokens.changing("T1"):  # as forget and revoke do around their transactions
        assert this.bot_token("T1") == "xoxb-T1"
    with this.engine.begin() as conn:  # behind the store's back
        conn.execute(schema.bots.update().values(bot_token="xoxb-behind"))
    assert this.bot_token("T1") == "xoxb-behind"  # read again: the answer given during the change was not kept
    with this.engine.begin() as conn:
        conn.execute(schema.bots.update().values(bot_token="xoxb-behind-again"))
    assert this.bot_token("T1") == "xoxb-behind"  # an answer read outside a change is kept


def test_user_tokens_are_never_cached(this, other):
    fake = FakeSlack()
    token = connect(this, fake, "U1", now=NOW)
    assert this.user_token("T1", "U1") == token
    assert this.user_tokens("T1", ["U1"]) == {"U1": token}
    other.forget_person("T1", "U1")  # another process: a disconnect shows at once everywhere
    assert this.user_token("T1", "U1") is None
    assert this.user_tokens("T1", ["U1"]) == {}
    assert this.dm_view("T1", "D1", recipient_id="U1", sender_id=None).recipient_token is None


def test_the_installation_store_says_which_app_it_holds(this):
    assert this.installation_store.client_id == "111.222"
