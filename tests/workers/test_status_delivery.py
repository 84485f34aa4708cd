"""The status kind on the delivery engine: exactly once across processes (each with its own Store, as two processes
have), a claim left by a dead process taken over after its lease, 429 Retry-After, 5xx retries, and refusals for good
(revoked token, missing scope) settled without a retry storm. Run on SQLite and on PostgreSQL (TEST_DATABASE_URL).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient

from bot.config import Config
from bot.services import build_services
from bot.slack.blocks.status_sync import problem_lines
from bot.status_sync import summary
from bot.storage import schema
from bot.storage.status import STATUS_LEASE
from bot.storage.store import Store
from bot.workers.status import StatusSync
from tests.support.helpers import connect, rows

SCOPES = "im:history,chat:write,users.profile:read,users.profile:write"
NOW = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # Tue 22:00 EST: off until Wed 09:00 EST
BACK = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
PEOPLE = [f"U{n}" for n in range(1, 13)]


@pytest.fixture
def process(migrated, settings, fake_slack, clock):
    """process() -> a StatusSync with its own Store (its own connection pool), as another process would have."""
    stores: list[Store] = []

    def build() -> StatusSync:
        store = Store(migrated, client_id="111.222")
        stores.append(store)
        client = WebClient(base_url=fake_slack.base_url, timeout=5)
        services = build_services(Config(), store, settings=settings, client=client, clock=clock)
        return StatusSync(services, workers=4)

    yield build
    for store in stores:
        store.close()


@pytest.fixture
def people(store, fake_slack, clock) -> list[str]:
    clock.set(NOW)
    for user_id in PEOPLE:
        connect(store, fake_slack, user_id, user_scopes=SCOPES, now=clock())
        store.status.choose("T1", user_id, enabled=True)
    return PEOPLE


def sets(fake, user_id: str | None = None) -> list:
    calls = fake.calls_to("users.profile.set")
    return [c for c in calls if user_id is None or c.token == f"xoxp-T1-{user_id}"]


def test_two_processes_set_each_status_exactly_once(process, people, fake_slack, store):
    first, second = process(), process()
    fake_slack.fail("users.profile.get", times=4, delay=0.05)  # slow reads: the two ticks overlap
    start = threading.Barrier(2)

    def run(sync: StatusSync) -> None:
        start.wait()
        for _ in range(3):
            sync.tick(NOW)

    threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for user_id in people:
        assert len(sets(fake_slack, user_id)) == 1, user_id
        assert fake_slack.status_of(user_id)["status_expiration"] == int(BACK.timestamp())
    updates = rows(store, schema.status_updates)
    assert len(updates) == len(people)
    assert {u["state"] for u in updates} == {"sent"}


def test_a_claim_left_by_a_process_that_died_is_taken_over_after_its_lease(process, people, fake_slack, store):
    dead = process()
    dead.plan(NOW)
    claimed = store.status.claim_due(now=NOW)  # claimed, then the process died before setting anything
    assert len(claimed) == len(people)
    restarted = process()
    assert restarted.tick(NOW + timedelta(seconds=30)) == 0  # the lease still holds
    assert sets(fake_slack) == []
    assert restarted.tick(NOW + STATUS_LEASE + timedelta(seconds=1)) == len(people)
    for user_id in people:
        assert len(sets(fake_slack, user_id)) == 1


def test_a_restart_catches_up_while_the_window_is_open_never_after(process, people, fake_slack, store):
    process().plan(NOW)  # recorded, then down all night
    back = process()
    assert back.tick(BACK - timedelta(minutes=5)) == len(people)  # 08:55: still off, set at once
    fake_slack.statuses.clear()
    store.status.choose("T1", "U1", emoji=":zzz:")  # a follow-up recorded now ...
    back.plan(BACK - timedelta(minutes=1))
    assert back.tick(BACK + timedelta(minutes=1)) == 0  # ... is not set once the window has closed
    assert fake_slack.statuses == {}


def test_a_429_waits_for_retry_after(process, people, fake_slack, store):
    sync = process()
    for user_id in people[1:]:
        store.status.choose("T1", user_id, enabled=False)
    fake_slack.fail("users.profile.set", status=429, retry_after=120)
    assert sync.tick(NOW) == 0
    [row] = rows(store, schema.status_updates)
    assert (row["state"], row["delivery_state"], row["last_error"]) == ("pending", "not_posted", "ratelimited")
    assert row["next_attempt_at"] == NOW + timedelta(seconds=120)
    assert sync.tick(NOW + timedelta(seconds=119)) == 0
    assert len(sets(fake_slack)) == 1  # only the refused one
    assert sync.tick(NOW + timedelta(seconds=120)) == 1
    assert fake_slack.status_of("U1")["status_text"] == "Off the clock — back Wed 09:00"


def test_a_5xx_is_retried_with_backoff_and_set_once(process, people, fake_slack, store):
    sync = process()
    for user_id in people[1:]:
        store.status.choose("T1", user_id, enabled=False)
    fake_slack.fail("users.profile.set", status=500, after_acting=True)  # Slack set it, then answered 500
    assert sync.tick(NOW) == 0
    [row] = rows(store, schema.status_updates)
    assert (row["state"], row["next_attempt_at"]) == ("pending", NOW + timedelta(seconds=10))
    assert sync.tick(NOW + timedelta(seconds=10)) == 1
    assert fake_slack.status_of("U1")["status_text"] == "Off the clock — back Wed 09:00"
    assert rows(store, schema.status_updates)[0]["applied"] is True


@pytest.mark.parametrize(
    ("break_it", "error", "told"),
    [
        (lambda fake: fake.tokens.pop("xoxp-T1-U1"), "invalid_auth", "Slack refused your token"),
        (lambda fake: fake.profile_scopes_missing.add("U1"), "missing_scope", "Grant access"),
    ],
)
def test_a_revoked_token_or_a_missing_scope_settles_the_update_and_is_shown(
    process, people, fake_slack, store, break_it, error, told
):
    sync = process()
    for user_id in people[1:]:
        store.status.choose("T1", user_id, enabled=False)
    break_it(fake_slack)
    assert sync.tick(NOW) == 0
    [row] = rows(store, schema.status_updates)
    assert (row["state"], row["last_error"]) == ("failed", error)
    calls = len(fake_slack.calls)
    for minutes in (1, 10, 60, 300):  # no retry storm: nothing more is asked of Slack in this window
        sync.tick(NOW + timedelta(minutes=minutes))
    assert len(fake_slack.calls) == calls
    prefs = sync.services.people.get("T1", "U1")
    shown = summary(sync.services.config, store.status, prefs, now=NOW)
    assert shown.problem == error
    assert told in "\n".join(problem_lines(shown, grant_url="https://x/slack/install?scopes=status&team=T1"))


def test_a_status_slack_refuses_is_not_retried_until_the_person_changes_it(process, people, fake_slack, store):
    sync = process()
    for user_id in people[1:]:
        store.status.choose("T1", user_id, enabled=False)
    fake_slack.fail("users.profile.set", error="invalid_emoji_not_allowed")
    assert sync.tick(NOW) == 0
    sync.tick(NOW + timedelta(minutes=5))
    assert len(sets(fake_slack)) == 1
    store.status.choose("T1", "U1", emoji=":zzz:")
    assert sync.tick(NOW + timedelta(minutes=6)) == 1
    assert fake_slack.status_of("U1")["status_emoji"] == ":zzz:"


def test_a_status_handed_back_at_a_stop_keeps_its_attempt_and_is_set_once(process, people, fake_slack, store):
    stopping = process()
    stopping.plan(NOW)
    claimed = store.status.claim_due(now=NOW)
    stopping.stop()
    assert stopping.engine.deliver_batch(claimed, now=NOW) == 0
    assert {(r["delivery_state"], r["attempts"]) for r in rows(store, schema.status_updates)} == {("not_posted", 0)}
    assert process().tick(NOW) == len(people)  # due at once: no lease to wait out
    for user_id in people:
        assert len(sets(fake_slack, user_id)) == 1
