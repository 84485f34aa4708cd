"""LookupSlots: after a 429, one workspace's lookups are spaced one Retry-After apart, each reply keeping its slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.workers.lookup_slots import FORGET_AFTER, LookupSlots

T0 = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_lookups_go_straight_to_slack_until_one_is_rate_limited():
    slots = LookupSlots()
    assert [slots.reserve("T1", reply_id, now=T0) for reply_id in range(5)] == [None] * 5


def test_after_a_429_each_reply_gets_its_own_slot_one_retry_after_apart():
    slots = LookupSlots()
    assert slots.limited("T1", 1, now=T0, retry_after=MINUTE) == T0 + MINUTE
    assert slots.reserve("T1", 2, now=T0 + timedelta(seconds=5)) == T0 + 2 * MINUTE
    assert slots.reserve("T1", 3, now=T0 + timedelta(seconds=6)) == T0 + 3 * MINUTE
    assert slots.reserve("T2", 4, now=T0) is None  # another workspace is not held back

    # Each comes back at its slot and looks; not before.
    assert slots.reserve("T1", 1, now=T0 + timedelta(seconds=59)) == T0 + MINUTE
    assert slots.reserve("T1", 1, now=T0 + MINUTE) is None
    assert slots.reserve("T1", 2, now=T0 + 2 * MINUTE) is None
    # A newcomer queues behind the slots already handed out.
    assert slots.reserve("T1", 5, now=T0 + 2 * MINUTE) == T0 + 4 * MINUTE
    assert slots.reserve("T1", 3, now=T0 + 3 * MINUTE) is None


def test_a_429_in_a_slot_pushes_that_reply_behind_the_queue():
    slots = LookupSlots()
    slots.limited("T1", 1, now=T0, retry_after=MINUTE)
    slots.reserve("T1", 2, now=T0)  # slot at +2 min
    assert slots.reserve("T1", 1, now=T0 + MINUTE) is None
    # Slack refused again (another process used the minute): the next free slot, after reply 2's.
    assert slots.limited("T1", 1, now=T0 + MINUTE, retry_after=MINUTE) == T0 + 3 * MINUTE


def test_a_quiet_workspace_is_forgotten_and_old_slots_do_not_hold_it_forever():
    slots = LookupSlots()
    slots.limited("T1", 1, now=T0, retry_after=MINUTE)
    slots.reserve("T1", 2, now=T0)  # reply 2 never comes back (it expired)
    late = T0 + 2 * MINUTE + FORGET_AFTER + timedelta(seconds=1)
    assert slots.reserve("T1", 3, now=late) is None
    assert slots.reserve("T1", 4, now=late) is None  # forgotten: no spacing until the next 429


def test_a_reply_settled_without_its_lookup_frees_its_slot_for_the_others():
    slots = LookupSlots()
    slots.limited("T1", 1, now=T0, retry_after=MINUTE)  # slot at +1 min
    for reply_id in (2, 3, 4):
        slots.reserve("T1", reply_id, now=T0)  # slots at +2, +3, +4 min
    for reply_id in (3, 4):  # their people came back: expired without a lookup
        slots.release("T1", reply_id)
    assert slots.reserve("T1", 5, now=T0) == T0 + 3 * MINUTE  # right after the slots still held
    for reply_id in (1, 2, 5):
        slots.release("T1", reply_id)
    # No slot held: the next lookup waits only for a spacing after the last one (the refused one at T0).
    assert slots.reserve("T1", 6, now=T0) == T0 + MINUTE
    assert slots.reserve("T1", 7, now=T0 + MINUTE) == T0 + 2 * MINUTE


def test_a_slot_used_late_still_spaces_the_next_lookup_a_whole_retry_after():
    slots = LookupSlots()
    slots.limited("T1", 1, now=T0, retry_after=MINUTE)  # slot at +1 min
    late = T0 + timedelta(seconds=115)  # the drain came late
    assert slots.reserve("T1", 1, now=late) is None
    assert slots.reserve("T1", 2, now=T0 + timedelta(seconds=120)) == late + MINUTE


def test_releasing_a_slot_never_lets_a_lookup_through_within_a_spacing_of_the_last():
    slots = LookupSlots()
    slots.limited("T1", 1, now=T0, retry_after=MINUTE)  # +1 min
    slots.reserve("T1", 2, now=T0)  # +2 min
    looked = T0 + timedelta(seconds=75)
    assert slots.reserve("T1", 1, now=looked) is None
    slots.release("T1", 2)  # reply 2 expired
    assert slots.reserve("T1", 3, now=T0 + timedelta(seconds=121)) == looked + MINUTE


def test_the_spacing_is_the_longest_retry_after_seen():
    slots = LookupSlots()
    slots.limited("T1", 1, now=T0, retry_after=MINUTE)
    # A later 429 names what is left of Slack's window (10 s), not the window: the spacing stays a minute.
    assert slots.limited("T1", 2, now=T0 + timedelta(seconds=50), retry_after=timedelta(seconds=10)) == T0 + 2 * MINUTE
    assert slots.reserve("T1", 3, now=T0 + timedelta(seconds=51)) == T0 + 3 * MINUTE
