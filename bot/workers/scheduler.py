"""APScheduler wiring only: interval jobs deliver due recaps, send pending replies, resolve deferred DMs and purge
old rows.

The job bodies are plain functions of `now`. The reply job drains the process's one reply sender (handed in by the
runtime), so its claims are handed back when the runtime stops that sender and its lookups share one spacing.

Why an interval poll and not a cron trigger per person: APScheduler 3.x cron triggers skip or repeat runs
around DST changes, and per-person jobs would have to be kept in step with every hours change. The due
times live in the database (computed by the hours engine), so any number of schedulers can poll them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler

from bot.services import Services
from bot.storage import ops
from bot.workers.channel_hours import ChannelReplySender, ChannelSummarySender
from bot.workers.deferred import DeferredDmResolver
from bot.workers.nudges import NudgeSender
from bot.workers.recaps import RecapSender
from bot.workers.replies import ReplySender
from bot.workers.status import StatusSync

log = logging.getLogger(__name__)

RECAP_JOB_ID = "offhours-recaps"
REPLY_JOB_ID = "offhours-replies"
PURGE_JOB_ID = "offhours-retention"
DEFERRED_JOB_ID = "offhours-deferred-dms"
CHANNEL_JOB_ID = "offhours-channel-hours"
STATUS_JOB_ID = "offhours-status"
NUDGE_JOB_ID = "offhours-nudges"
HEARTBEAT_JOB = "scheduler"  # the row in scheduler_ticks: the recap tick, or the reply drain with recaps off


def start_scheduler(services: Services, *, replies: ReplySender, start: bool = True) -> BackgroundScheduler:
    """Build (and start) the scheduler; `replies` is the process's reply sender. Its job store is in memory:
    correctness lives in the database."""
    scheduler = BackgroundScheduler(
        timezone="UTC",
        job_defaults={
            "coalesce": True,  # after a pause, run once rather than once per missed interval
            "misfire_grace_time": None,  # the 1-second default silently drops late runs
            "max_instances": 1,
        },
    )
    config = services.config
    if config.recap.enabled:
        recaps = RecapSender(services)
        scheduler.add_job(
            _safely(_beating(services, lambda: recaps.tick(services.clock())), "recaps"),
            "interval",
            seconds=config.recap.poll_seconds,
            id=RECAP_JOB_ID,
            replace_existing=True,
            next_run_time=services.clock(),  # first tick at start-up: catch up on recaps due while down
        )

    # Replies left pending by a web process that died are sent from here too.
    def drain() -> None:
        replies.drain(now=services.clock())

    reply_poll_s = max(config.recap.poll_seconds, 5)
    scheduler.add_job(
        _safely(drain if config.recap.enabled else _beating(services, drain), "replies"),
        "interval",
        seconds=reply_poll_s,
        id=REPLY_JOB_ID,
        replace_existing=True,
    )
    # DMs whose other member Slack would not name before the ack: looked up and recorded here.
    deferred = DeferredDmResolver(services)
    scheduler.add_job(
        _safely(lambda: deferred.tick(now=services.clock()), "deferred_dms"),
        "interval",
        seconds=reply_poll_s,
        id=DEFERRED_JOB_ID,
        replace_existing=True,
    )
    # Channel office hours (issue 25): the summaries due at the start of a channel's hours, and the channel
    # replies a web process left pending (caught up after downtime; expired once the team is back).
    channel_summaries, channel_replies = ChannelSummarySender(services), ChannelReplySender(services)

    def channel_hours() -> None:
        channel_summaries.tick(services.clock())
        channel_replies.drain(now=services.clock())

    scheduler.add_job(
        _safely(channel_hours, "channel_hours"),
        "interval",
        seconds=reply_poll_s,
        id=CHANNEL_JOB_ID,
        replace_existing=True,
        next_run_time=services.clock(),
    )
    # Slack statuses that follow people's hours: planned and set every status.poll_seconds, from start-up on (a
    # status due while the process was down is set at once if its window is still open).
    status_sync = StatusSync(services)
    scheduler.add_job(
        _safely(lambda: status_sync.tick(services.clock()), "status"),
        "interval",
        seconds=config.status.poll_seconds,
        id=STATUS_JOB_ID,
        replace_existing=True,
        next_run_time=services.clock(),
    )
    # Reminders before the reply-by times auto-replies promised (planned from the sent replies, then sent when due).
    nudges = NudgeSender(services)
    scheduler.add_job(
        _safely(lambda: nudges.tick(services.clock()), "nudges"),
        "interval",
        seconds=reply_poll_s,
        id=NUDGE_JOB_ID,
        replace_existing=True,
        next_run_time=services.clock(),  # at start-up: catch up on nudges due while down, still before their promise
    )
    scheduler.add_job(
        _safely(lambda: services.store.purge_expired(now=services.clock(), days=config.retention_days), "retention"),
        "interval",
        hours=1,
        id=PURGE_JOB_ID,
        replace_existing=True,
        next_run_time=services.clock(),
    )
    # The senders' posting threads end with the scheduler, once the jobs under way have (shutdown(wait=True)).
    senders: list[_Stoppable] = [channel_summaries, channel_replies, status_sync, nudges]
    if config.recap.enabled:
        senders.append(recaps)
    scheduler.add_listener(lambda _event: _stop_all(senders), EVENT_SCHEDULER_SHUTDOWN)
    # From here on this process's /readyz expects the heartbeat.
    beat_s = config.recap.poll_seconds if config.recap.enabled else reply_poll_s
    services.metrics.scheduler_started(poll_seconds=beat_s, now=services.clock())
    if start:
        scheduler.start()
        # What an operator checks first when no recap arrives: is it running, and with which settings.
        log.info(
            "scheduler started recaps=%s poll_s=%g retention_days=%d",
            "on" if config.recap.enabled else "off", config.recap.poll_seconds, config.retention_days,
        )  # fmt: skip
    return scheduler


def _beating(services: Services, job: Callable[[], object]) -> Callable[[], None]:
    """`job`, then the heartbeat: for this process's /readyz (in memory), for `python -m bot status` (the database)."""

    def run() -> None:
        job()
        now = services.clock()
        services.metrics.scheduler_ticked(now)
        ops.record_tick(services.store.engine, HEARTBEAT_JOB, now=now)

    return run


def _safely(job: Callable[[], object], name: str) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:  # a database outage, say: log it; the next interval tries again
            log.exception("scheduler: %s job failed", name)

    run.__name__ = f"offhours_{name}"
    return run


class _Stoppable(Protocol):
    def stop(self, timeout: float = 5.0) -> None: ...


def _stop_all(senders: list[_Stoppable]) -> None:
    for sender in senders:
        sender.stop()
