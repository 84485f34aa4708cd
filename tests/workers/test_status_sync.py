"""Status sync end to end over real HTTP against the fake Slack: the planner and the status kind of delivery run on
the injected clock (`tick(now)`); assertions on the person's status as the fake Slack holds it.

U1 is in New York with the default hours (Mon–Fri 09:00–17:30). In March 2026 the clocks go forward on Sunday the
8th, so the weekend window Fri 6 Mar 17:30 EST (22:30 UTC) → Mon 9 Mar 09:00 EDT ends at 13:00 UTC, not 14:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Config, StatusConfig
from bot.storage import schema
from bot.storage.status import STATUS_LEASE
from bot.workers.status import ReadyStatus, StatusSync
from tests.support.helpers import connect, rows

SCOPES = "im:history,chat:write,users.profile:read,users.profile:write"
FRIDAY_EVENING = datetime(2026, 3, 6, 23, 0, tzinfo=UTC)  # Fri 18:00 EST
MONDAY_BACK = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # Mon 09:00 EDT (after the DST change)
TUESDAY_EVENING = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)  # Tue 18:00 EDT
WEDNESDAY_BACK = datetime(2026, 3, 11, 13, 0, tzinfo=UTC)


@pytest.fixture
def sync(make_app, store, fake_slack, clock):
    clock.set(FRIDAY_EVENING)
    app = make_app()
    connect(store, fake_slack, "U1", user_scopes=SCOPES, now=clock())
    store.status.choose("T1", "U1", enabled=True)
    return StatusSync(app.services, workers=2)


def sets(fake) -> list:
    return fake.calls_to("users.profile.set")


def updates(store) -> list[dict]:
    return rows(store, schema.status_updates)


def test_the_status_is_set_at_the_window_start_until_its_end_across_the_dst_change(sync, fake_slack, store, clock):
    assert sync.tick(clock()) == 1
    status = fake_slack.status_of("U1")
    assert status == {
        "status_text": "Off the clock — back Mon 09:00",
        "status_emoji": ":crescent_moon:",
        "status_expiration": int(MONDAY_BACK.timestamp()),
    }
    # Read first, with the person's own token.
    assert [c.method for c in fake_slack.calls if c.method.startswith("users.profile")] == [
        "users.profile.get", "users.profile.set",
    ]  # fmt: skip
    assert fake_slack.calls_to("users.profile.set")[0].token == "xoxp-T1-U1"
    # Once per window: later ticks in the same window set nothing more.
    for minutes in (1, 30, 600):
        assert sync.tick(clock() + timedelta(minutes=minutes)) == 0
    assert len(sets(fake_slack)) == 1
    [row] = updates(store)
    assert (row["state"], row["applied"], row["result"]) == ("sent", True, "set")


def test_nothing_is_set_while_the_person_works(sync, fake_slack, clock):
    assert sync.tick(datetime(2026, 3, 9, 15, 0, tzinfo=UTC)) == 0  # Mon 11:00 EDT
    assert fake_slack.calls_to("users.profile.get") == []


def test_a_status_the_person_set_themselves_is_never_overwritten(sync, fake_slack, store, clock):
    fake_slack.set_status("U1", "In Lisbon", ":airplane:")
    assert sync.tick(clock()) == 1  # the update went through: it found the person's own status
    assert sets(fake_slack) == []
    assert fake_slack.status_of("U1")["status_text"] == "In Lisbon"
    [row] = updates(store)
    assert (row["state"], row["applied"], row["result"]) == ("sent", False, "own")
    # Not for the rest of that window, even once they clear it.
    fake_slack.set_status("U1", "")
    sync.tick(clock() + timedelta(hours=2))
    assert sets(fake_slack) == []


def test_a_status_the_person_sets_during_the_window_is_no_longer_touched(sync, fake_slack, store, clock):
    sync.tick(clock())
    fake_slack.set_status("U1", "Dinner", ":pizza:")
    # A change of emoji would update Offhours' status, but the status is now the person's: it stays.
    store.status.choose("T1", "U1", emoji=":zzz:")
    sync.tick(clock() + timedelta(minutes=5))
    assert fake_slack.status_of("U1")["status_text"] == "Dinner"
    assert len(sets(fake_slack)) == 1
    # Turning sync off does not clear their status either.
    store.status.choose("T1", "U1", enabled=False)
    sync.tick(clock() + timedelta(minutes=10))
    assert fake_slack.status_of("U1")["status_text"] == "Dinner"
    assert len(sets(fake_slack)) == 1


def test_a_clear_still_queued_when_sync_is_turned_back_on_is_not_sent(sync, fake_slack, store, clock):
    sync.tick(clock())
    store.status.choose("T1", "U1", enabled=False)
    sync.plan(clock() + timedelta(seconds=30))  # the clear is recorded, not yet delivered...
    store.status.choose("T1", "U1", enabled=True)  # ...when the person turns sync back on
    sync.tick(clock() + timedelta(seconds=31))
    assert fake_slack.status_of("U1")["status_text"] == "Off the clock — back Mon 09:00"
    assert len(sets(fake_slack)) == 1
    sync.tick(clock() + timedelta(minutes=5))
    assert len(sets(fake_slack)) == 1
    store.status.choose("T1", "U1", enabled=False)  # and off again: cleared
    sync.tick(clock() + timedelta(minutes=6))
    assert fake_slack.status_of("U1")["status_text"] == ""


def test_each_window_gets_its_own_status_with_its_own_expiration(sync, fake_slack, clock):
    sync.tick(clock())
    fake_slack.set_status("U1", "")  # Slack cleared it at the expiration
    assert sync.tick(TUESDAY_EVENING) == 1
    assert fake_slack.status_of("U1") == {
        "status_text": "Off the clock — back Wed 09:00",
        "status_emoji": ":crescent_moon:",
        "status_expiration": int(WEDNESDAY_BACK.timestamp()),
    }


def test_after_downtime_a_window_still_open_is_caught_up_and_one_that_closed_is_not(sync, fake_slack, store, clock):
    # Recorded on Friday evening, then the process stopped before delivering it.
    sync.plan(clock())
    assert sets(fake_slack) == []
    # Back on Tuesday at noon (working): the weekend's status is never set after its window closed.
    assert sync.tick(datetime(2026, 3, 10, 16, 0, tzinfo=UTC)) == 0
    assert sets(fake_slack) == []
    [row] = updates(store)
    assert (row["state"], row["last_error"]) == ("expired", "window_over")
    # Down from Tuesday 17:00 to 20:00 EDT: the evening's status is set on return, with the window's end.
    assert sync.tick(datetime(2026, 3, 11, 0, 0, tzinfo=UTC)) == 1
    assert fake_slack.status_of("U1")["status_expiration"] == int(WEDNESDAY_BACK.timestamp())


# --- status replace -----------------------------------------------------------------------------------------


def test_with_replace_the_persons_own_status_is_replaced_and_put_back_at_the_window_end(sync, fake_slack, store, clock):
    store.status.choose("T1", "U1", replace=True)
    fake_slack.set_status("U1", "In Lisbon", ":airplane:")
    sync.tick(clock())
    assert fake_slack.status_of("U1")["status_text"] == "Off the clock — back Mon 09:00"
    assert sync.tick(MONDAY_BACK - timedelta(minutes=1)) == 0  # nothing before the end
    fake_slack.set_status("U1", "")  # Slack cleared Offhours' status at its expiration
    assert sync.tick(MONDAY_BACK) == 1
    assert fake_slack.status_of("U1") == {"status_text": "In Lisbon", "status_emoji": ":airplane:",
                                          "status_expiration": 0}  # fmt: skip
    assert sync.tick(MONDAY_BACK + timedelta(minutes=5)) == 0  # once
    assert [u["result"] for u in updates(store)] == ["set", "restored"]


def test_with_replace_a_status_changed_during_the_window_is_not_overwritten_by_the_restore(
    sync, fake_slack, store, clock
):
    store.status.choose("T1", "U1", replace=True)
    fake_slack.set_status("U1", "In Lisbon", ":airplane:")
    sync.tick(clock())
    fake_slack.set_status("U1", "Dentist", ":tooth:")
    sync.tick(MONDAY_BACK)
    assert fake_slack.status_of("U1")["status_text"] == "Dentist"
    assert [u["result"] for u in updates(store)] == ["set", "left"]


def test_with_replace_a_status_set_during_the_window_is_not_replaced_by_a_new_emoji(sync, fake_slack, store, clock):
    store.status.choose("T1", "U1", replace=True)
    sync.tick(clock())  # empty: Offhours' status at the window start
    fake_slack.set_status("U1", "Dentist", ":tooth:")  # the person's own, set during the window
    store.status.choose("T1", "U1", emoji=":zzz:")
    assert sync.tick(clock() + timedelta(minutes=5)) == 1
    assert fake_slack.status_of("U1")["status_text"] == "Dentist"
    assert len(sets(fake_slack)) == 1
    assert [u["result"] for u in updates(store)] == ["set", "own"]
    fake_slack.set_status("U1", "")
    sync.tick(MONDAY_BACK)  # and nothing to put back at the end
    assert len(sets(fake_slack)) == 1


def test_with_replace_turning_sync_off_puts_the_persons_status_back_at_once(sync, fake_slack, store, clock):
    store.status.choose("T1", "U1", replace=True)
    fake_slack.set_status("U1", "In Lisbon", ":airplane:")
    sync.tick(clock())
    store.status.choose("T1", "U1", enabled=False)
    sync.tick(clock() + timedelta(seconds=30))
    assert fake_slack.status_of("U1")["status_text"] == "In Lisbon"


def test_with_replace_an_own_status_that_expired_meanwhile_is_not_put_back(sync, fake_slack, store, clock):
    store.status.choose("T1", "U1", replace=True)
    lunch_over = int((clock() + timedelta(hours=1)).timestamp())
    fake_slack.set_status("U1", "Lunch", ":sandwich:", lunch_over)
    sync.tick(clock())
    sync.tick(MONDAY_BACK)  # Offhours' status still there (as Slack would show it a moment before): cleared
    assert fake_slack.status_of("U1")["status_text"] == ""
    assert [u["result"] for u in updates(store)] == ["set", "cleared"]


def test_without_replace_nothing_is_restored_at_the_window_end(sync, fake_slack, store, clock):
    sync.tick(clock())
    fake_slack.set_status("U1", "")
    assert sync.tick(MONDAY_BACK) == 0
    assert len(sets(fake_slack)) == 1


def test_with_replace_a_set_whose_claim_was_taken_over_meanwhile_writes_nothing(sync, fake_slack, store, clock):
    store.status.choose("T1", "U1", replace=True)
    fake_slack.set_status("U1", "In Lisbon", ":airplane:")
    sync.plan(clock())
    [claim] = store.status.claim_due(now=clock())
    [(_, prepared)] = sync.kind.prepare([claim], now=clock())
    assert isinstance(prepared, ReadyStatus)
    store.status.claim_due(now=clock() + STATUS_LEASE + timedelta(seconds=1))  # another process took it over
    assert sync.engine.attempt(claim, prepared, now=clock()) is None  # abandoned
    assert sets(fake_slack) == []
    assert fake_slack.status_of("U1")["status_text"] == "In Lisbon"
    [row] = updates(store)
    assert (row["state"], row["saved_text"]) == ("pending", None)


def test_config_status_enabled_is_the_default_for_people_who_never_chose(make_app, store, fake_slack, clock):
    clock.set(FRIDAY_EVENING)
    app = make_app(Config(status=StatusConfig(enabled=True, emoji=":zzz:")))
    for user_id in ("U1", "U2", "U3"):
        connect(store, fake_slack, user_id, user_scopes=SCOPES, now=clock())
    store.status.choose("T1", "U2", enabled=False)  # chose off
    connect(store, fake_slack, "U4", now=clock())  # without the scopes: nothing asked of Slack
    StatusSync(app.services, workers=2).tick(clock())
    assert fake_slack.status_of("U1")["status_emoji"] == ":zzz:"
    assert fake_slack.status_of("U3")["status_emoji"] == ":zzz:"
    assert fake_slack.status_of("U2")["status_text"] == ""
    assert {c.token for c in fake_slack.calls_to("users.profile.get")} == {"xoxp-T1-U1", "xoxp-T1-U3"}


def test_with_replace_a_set_whose_answer_was_lost_still_puts_the_persons_status_back(sync, fake_slack, store, clock):
    store.status.choose("T1", "U1", replace=True)
    fake_slack.set_status("U1", "In Lisbon", ":airplane:")
    fake_slack.fail("users.profile.set", after_acting=True, status=500)  # set, then answered 500
    assert sync.tick(clock()) == 0
    assert fake_slack.status_of("U1")["status_text"] == "Off the clock — back Mon 09:00"
    # The retry finds Offhours' status on the profile, and still knows the person's own.
    assert sync.tick(clock() + timedelta(minutes=1)) == 1
    fake_slack.set_status("U1", "")
    sync.tick(MONDAY_BACK)
    assert fake_slack.status_of("U1")["status_text"] == "In Lisbon"
