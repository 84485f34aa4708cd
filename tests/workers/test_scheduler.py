"""The APScheduler wiring: which jobs, with which trigger and options, and that the recap job delivers.

The scheduler is built with start=False, so nothing runs in the background; job functions are called directly
with the injected clock. `python -m bot scheduler` is covered by the end-to-end tests.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Config
from bot.storage import schema
from bot.workers import deferred
from bot.workers.recaps import RecapSender
from bot.workers.replies import ReplySender
from bot.workers.scheduler import (
    CHANNEL_JOB_ID,
    DEFERRED_JOB_ID,
    PURGE_JOB_ID,
    RECAP_JOB_ID,
    REPLY_JOB_ID,
    start_scheduler,
)
from tests.support.helpers import connect, rows
from tests.support.slackhttp import dm_channel

DUE = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # Wed 09:00 in New York


def pending(scheduler) -> dict[str, bool]:
    """id -> replace_existing of the jobs added before start (APScheduler 3 keeps the flag only there)."""
    return {job.id: replace_existing for job, _store, replace_existing in scheduler._pending_jobs}


@pytest.fixture
def built():
    """built(services) -> (scheduler, {id: job}): built with start=False, then started paused so APScheduler
    applies the job defaults; nothing runs. Shut down after the test."""
    made = []

    def build(services):
        scheduler = start_scheduler(services, replies=ReplySender(services), start=False)
        assert not scheduler.running
        made.append(scheduler)
        scheduler.start(paused=True)
        return scheduler, {job.id: job for job in scheduler.get_jobs()}

    yield build
    for scheduler in made:
        scheduler.shutdown(wait=False)


def test_start_false_builds_the_jobs_without_running_them(offhours):
    scheduler = start_scheduler(offhours.services, replies=ReplySender(offhours.services), start=False)
    assert not scheduler.running
    assert pending(scheduler) == {
        RECAP_JOB_ID: True, REPLY_JOB_ID: True, PURGE_JOB_ID: True, DEFERRED_JOB_ID: True, CHANNEL_JOB_ID: True
    }  # replace_existing  # fmt: skip


def test_starting_says_so_in_the_log_with_its_settings(offhours, caplog):
    caplog.set_level(logging.INFO, logger="bot.workers.scheduler")
    scheduler = start_scheduler(offhours.services, replies=ReplySender(offhours.services))
    try:
        scheduler.pause()  # nothing should run during the test
        [started] = [r.getMessage() for r in caplog.records if r.name == "bot.workers.scheduler"]
        assert started == "scheduler started recaps=on poll_s=30 retention_days=14"
    finally:
        scheduler.shutdown(wait=True)  # its first ticks run at start: let them end before the database goes


def test_one_interval_job_delivers_recaps_with_the_safe_options(offhours, clock, built):
    scheduler, jobs = built(offhours.services)
    assert set(jobs) == {RECAP_JOB_ID, REPLY_JOB_ID, PURGE_JOB_ID, DEFERRED_JOB_ID, CHANNEL_JOB_ID}
    job = jobs[RECAP_JOB_ID]
    assert isinstance(job.trigger, IntervalTrigger)  # not a cron trigger per person (DST skips and repeats)
    assert job.trigger.interval == timedelta(seconds=30)  # recap.poll_seconds
    assert job.coalesce is True
    assert job.misfire_grace_time is None  # the 1-second default silently drops late runs
    assert job.max_instances == 1
    assert job.next_run_time == clock()  # the first tick at start-up catches up on what came due while down
    assert str(scheduler.timezone) == "UTC"


def test_poll_seconds_comes_from_the_config_and_a_disabled_recap_has_no_job(make_app, built):
    _scheduler, jobs = built(make_app(recap=replace(Config().recap, poll_seconds=5)).services)
    assert jobs[RECAP_JOB_ID].trigger.interval == timedelta(seconds=5)

    _scheduler, jobs = built(make_app(recap=replace(Config().recap, enabled=False)).services)
    assert RECAP_JOB_ID not in jobs


def test_calling_the_recap_job_delivers_what_is_due(offhours, store, fake_slack, slack, clock, built):
    connect(store, fake_slack, "U1", tz="America/New_York")
    assert slack.dm(sender="U2", recipient="U1", ts=clock().timestamp()).status == 200
    _scheduler, jobs = built(offhours.services)
    job = jobs[RECAP_JOB_ID]

    job.func()  # Tue 22:00: nothing due
    assert fake_slack.calls_to("chat.postMessage") == []

    clock.set(DUE)
    job.func()
    [post] = fake_slack.calls_to("chat.postMessage")
    assert (post.token, post.params["channel"]) == ("xoxb-T1", "U1")
    assert post.params["text"] == "While you were off — Tue 17:30 → Wed 09:00"

    clock.advance(seconds=30)
    job.func()  # the next interval: already sent
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_calling_the_deferred_dm_job_records_a_dm_whose_lookup_was_refused(
    offhours, store, fake_slack, slack, clock, built
):
    connect(store, fake_slack, "U1", tz="America/New_York")
    connect(store, fake_slack, "U2")
    channel = dm_channel("U1", "U2")
    fake_slack.dm_members[channel] = ("U1", "U2")
    fake_slack.fail("conversations.info", status=429, retry_after=30)
    response = slack.dm(sender="U2", recipient="U1", ts=clock().timestamp(), authorized="U2", channel=channel)
    assert response.status == 200
    assert rows(store, schema.messages) == []
    _scheduler, jobs = built(offhours.services)

    jobs[DEFERRED_JOB_ID].func()  # Retry-After not over
    assert rows(store, schema.messages) == [] and len(rows(store, schema.deferred_dms)) == 1
    clock.advance(seconds=30)
    jobs[DEFERRED_JOB_ID].func()
    [message] = rows(store, schema.messages)
    assert (message["recipient_id"], message["sender_id"]) == ("U1", "U2")
    assert rows(store, schema.deferred_dms) == []


def test_a_deferred_dm_that_keeps_failing_does_not_hold_back_the_others(
    offhours, store, fake_slack, slack, clock, built, monkeypatch
):
    """U2 writes to U1 and to U3, and both lookups are refused: two deferred DMs. Recording U1's fails every time
    (a bug, say): U3's is recorded all the same, and U1's stays, rescheduled, to be tried again."""
    for user in ("U1", "U2", "U3"):
        connect(store, fake_slack, user, tz="America/New_York")
    to_u1, to_u3 = dm_channel("U1", "U2"), dm_channel("U3", "U2")
    fake_slack.dm_members[to_u1] = ("U1", "U2")
    fake_slack.dm_members[to_u3] = ("U3", "U2")
    fake_slack.fail("conversations.info", times=2, status=429, retry_after=30)
    for recipient, channel, offset in (("U1", to_u1, 0), ("U3", to_u3, 1)):
        response = slack.dm(sender="U2", recipient=recipient, ts=clock().timestamp() + offset, authorized="U2",
                            channel=channel)  # fmt: skip
        assert response.status == 200
    assert len(rows(store, schema.deferred_dms)) == 2
    real = deferred.record_for_other_member

    def failing_for_u1(services, message, other):
        if other == "U1":
            raise RuntimeError("cannot record")
        return real(services, message, other)

    monkeypatch.setattr(deferred, "record_for_other_member", failing_for_u1)
    _scheduler, jobs = built(offhours.services)
    clock.advance(seconds=31)
    jobs[DEFERRED_JOB_ID].func()
    jobs[DEFERRED_JOB_ID].func()  # U1's row waits out its backoff: a second tick still records nothing twice
    [message] = rows(store, schema.messages)
    assert (message["recipient_id"], message["channel_id"]) == ("U3", to_u3)
    [left] = rows(store, schema.deferred_dms)
    assert (left["channel_id"], left["attempts"]) == (to_u1, 1)  # the failed record, counted
    assert left["next_attempt_at"] > clock()


def test_a_failing_tick_is_logged_and_does_not_escape(offhours, monkeypatch, caplog, built):
    def broken(self, now=None):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(RecapSender, "tick", broken)
    _scheduler, jobs = built(offhours.services)
    with caplog.at_level(logging.ERROR, logger="bot.workers.scheduler"):
        jobs[RECAP_JOB_ID].func()  # the next interval simply tries again
    assert "scheduler: recaps job failed" in caplog.text


@pytest.mark.parametrize("job_id", [REPLY_JOB_ID, PURGE_JOB_ID, DEFERRED_JOB_ID])
def test_the_other_jobs_are_intervals_with_the_same_options(offhours, built, job_id):
    _scheduler, jobs = built(offhours.services)
    job = jobs[job_id]
    assert isinstance(job.trigger, IntervalTrigger)
    assert (job.coalesce, job.misfire_grace_time, job.max_instances) == (True, None, 1)


def test_the_reply_job_drains_the_reply_sender_it_was_given(offhours, clock):
    sender = ReplySender(offhours.services)
    drained = []
    sender.drain = lambda *, now=None: drained.append(now) or 0  # type: ignore[method-assign]
    scheduler = start_scheduler(offhours.services, replies=sender, start=False)
    scheduler.get_job(REPLY_JOB_ID).func()
    assert drained == [clock()]  # this sender, at the injected clock: the process builds no second one
