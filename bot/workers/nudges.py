"""Nudges as a kind of delivery: a reminder, from the Offhours app, before the reply-by time an auto-reply promised.

Each tick first plans the auto-replies sent since the last one (bot/domain/nudge.py: the promise and the nudge's
working-time instant, from the person's settings), then claims what is due (bot/storage/nudges.py). Right before
posting, everything is decided again from the person's current settings: nothing for an answered conversation,
while paused or disconnected, with nudges off; a promise that moved waits for its new time; one that now falls
outside working time, or has passed (downtime), is dropped and counted. The post goes to the person's DM with the
app (bot token), marked with metadata so that an attempt of unknown outcome is looked up before posting again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot.domain import nudge
from bot.domain.delivery import DeliveryState, Outcome
from bot.domain.preferences import Preferences
from bot.services import Services
from bot.slack.blocks.nudge import nudge_blocks, nudge_text
from bot.slack.client import sending_client, slack_code
from bot.storage.nudges import MAX_NUDGE_ATTEMPTS, NUDGE_LEASE, ClaimedNudge, SentReply
from bot.workers.engine import DeliveryEngine
from bot.workers.kind import KindDefaults, Posted

log = logging.getLogger(__name__)

S = DeliveryState
NUDGE_EVENT_TYPE = "offhours_nudge"
PLAN_ROUNDS = 20  # of up to 500 sent replies each, per tick


@dataclass(frozen=True, slots=True)
class ReadyNudge:
    token: str | None  # the bot's
    user_token: str
    tz: str
    promise: datetime
    now: datetime
    permalink: str | None = None


class NudgeKind(KindDefaults[ClaimedNudge, ReadyNudge]):
    """The nudge kind of delivery (see bot/workers/engine.py's DeliveryKind)."""

    name = "nudge"
    metric_name = "nudge"
    lease = NUDGE_LEASE
    max_attempts: int | None = MAX_NUDGE_ATTEMPTS

    def __init__(self, services: Services, *, batch_size: int = 50) -> None:
        self.services = services
        self.store = services.store
        self.nudges = services.store.nudges
        self.client = sending_client(services.client)
        self.batch_size = batch_size
        self._moved: dict[int, datetime] = {}  # claim id -> the promise it now waits for (written with its outcome)

    def lag_from(self, claim: ClaimedNudge) -> datetime | None:
        return claim.due_at

    # --- planning --------------------------------------------------------------------------------------------

    def plan(self, now: datetime) -> int:
        """Plan the nudge of every auto-reply sent since the last tick; returns how many will be sent."""
        since = now - timedelta(days=self.services.config.retention_days)
        planned = 0
        for _round in range(PLAN_ROUNDS):
            replies = self.nudges.unplanned(since=since)
            if not replies:
                break
            plans: list[tuple[SentReply, datetime | None, datetime | None]] = []
            for team_id in {r.team_id for r in replies}:
                prefs = self.services.people.get_many(team_id, {r.user_id for r in replies if r.team_id == team_id})
                for reply in (r for r in replies if r.team_id == team_id):
                    found = self._plan_one(reply, prefs[reply.user_id])
                    plans.append((reply, found.promise if found else None, found.at if found else None))
                    planned += found is not None
            self.nudges.add(plans, now=now)
        return planned

    def _plan_one(self, reply: SentReply, person: Preferences) -> nudge.NudgePlan | None:
        template = (person.external_message or person.message) if reply.external else person.message
        if not nudge.promises(template):
            return None
        # With nudges off it is planned all the same (at the usual lead) and dropped when due if they still are.
        before = nudge.effective_before(person.nudge_before_s, self.services.config.nudge.before)
        return nudge.plan(person.schedule, received_at=reply.received_at, reply_within=person.reply_within,
                          before=before or nudge.DEFAULT_BEFORE)  # fmt: skip

    # --- the engine's questions ------------------------------------------------------------------------------

    def claims(
        self, at: Callable[[], datetime], wait: Callable[[], None]
    ) -> Generator[tuple[datetime, list[ClaimedNudge]]]:
        self.plan(at())
        while True:
            now = at()
            batch = self.nudges.claim_due(now=now, limit=self.batch_size)
            if not batch:
                return
            yield now, batch
            wait()

    def prepare(self, batch: list[ClaimedNudge], *, now: datetime) -> list[tuple[ClaimedNudge, ReadyNudge | Outcome]]:
        prepared: list[tuple[ClaimedNudge, ReadyNudge | Outcome]] = []
        for team_id in {claim.team_id for claim in batch}:
            claims = [claim for claim in batch if claim.team_id == team_id]
            people = {claim.user_id for claim in claims}
            tokens = self.store.user_tokens(team_id, people)
            prefs = self.services.people.get_many(team_id, people)
            bot_token = self.store.bot_token(team_id) if tokens else None
            for claim in claims:
                prepared.append((claim, self._prepare_one(claim, prefs[claim.user_id], tokens.get(claim.user_id),
                                                          bot_token, now=now)))  # fmt: skip
        return prepared

    def _prepare_one(
        self, claim: ClaimedNudge, person: Preferences, user_token: str | None, bot_token: str | None, *,
        now: datetime,
    ) -> ReadyNudge | Outcome:  # fmt: skip
        if claim.answered:
            return Outcome(S.EXPIRED, error="answered")
        if user_token is None:
            return Outcome(S.EXPIRED, error="not_connected")
        decision = nudge.decide(
            person.schedule, received_at=claim.received_at, reply_within=person.reply_within,
            before=nudge.effective_before(person.nudge_before_s, self.services.config.nudge.before),
            paused=person.paused, promised=claim.promised_at, due_at=claim.due_at, snoozed=claim.snoozed, now=now,
        )  # fmt: skip
        if isinstance(decision, nudge.Drop):
            if decision.reason == "promise_passed":
                self.services.metrics.nudge_dropped(decision.reason)
            return Outcome(S.EXPIRED, error=decision.reason)
        if isinstance(decision, nudge.Wait):
            if decision.promise != claim.promised_at:
                self._moved[claim.id] = decision.promise
            # Not an attempt: the claim only learnt its (new) due time. One of unknown outcome still looks first.
            state = S.OUTCOME_UNKNOWN if claim.outcome_unknown else S.QUEUED
            return Outcome(state, error=claim.last_error, retry_at=decision.at, untried=True)
        if decision.promise != claim.promised_at:
            self._moved[claim.id] = decision.promise
        return ReadyNudge(token=bot_token, user_token=user_token, tz=person.tz, promise=decision.promise, now=now)

    def compose(self, claim: ClaimedNudge, prepared: ReadyNudge, *, now: datetime) -> ReadyNudge | Outcome:
        try:
            link = self.client.chat_getPermalink(token=prepared.user_token, channel=claim.channel_id,
                                                 message_ts=claim.thread_ts)["permalink"]  # fmt: skip
        except (SlackApiError, OSError) as e:  # still useful without the link: it names who and when
            log.info("nudge id=%s permalink failed error=%s", claim.id,
                     slack_code(e) if isinstance(e, SlackApiError) else type(e).__name__)  # fmt: skip
            link = None
        return ReadyNudge(token=prepared.token, user_token=prepared.user_token, tz=prepared.tz,
                          promise=prepared.promise, now=prepared.now, permalink=link)  # fmt: skip

    def look_up(self, claim: ClaimedNudge, prepared: ReadyNudge) -> Posted | None:
        """This nudge if an earlier attempt posted it, found by its metadata in the person's DM with the app."""
        channel = self.client.conversations_open(token=prepared.token, users=claim.user_id)["channel"]["id"]
        oldest = claim.due_at - timedelta(days=1)
        history = self.client.conversations_history(
            token=prepared.user_token, channel=channel, oldest=f"{oldest.timestamp():.6f}", include_all_metadata=True,
            limit=100,
        )  # fmt: skip
        for message in history.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == NUDGE_EVENT_TYPE and payload.get("nudge_id") == str(claim.id):
                return Posted(channel=channel, ts=message.get("ts"))
        return None

    def renew(self, claim: ClaimedNudge, *, until: datetime) -> bool:
        return self.nudges.renew(claim.id, attempts=claim.attempts, until=until)

    def post(self, claim: ClaimedNudge, prepared: ReadyNudge) -> Posted:
        now = prepared.now
        response = self.client.chat_postMessage(
            token=prepared.token,
            channel=claim.user_id,
            text=nudge_text(sender_id=claim.sender_id, received_at=claim.received_at, promised_at=prepared.promise,
                            tz=prepared.tz, now=now),
            blocks=nudge_blocks(
                nudge_id=claim.id, sender_id=claim.sender_id, received_at=claim.received_at,
                promised_at=prepared.promise, tz=prepared.tz, now=now, permalink=prepared.permalink,
                snoozable=not claim.snoozed,
            ),
            metadata={"event_type": NUDGE_EVENT_TYPE, "event_payload": {"nudge_id": str(claim.id)}},
        )  # fmt: skip
        return Posted(channel=response.get("channel"), ts=response.get("ts"))

    def settle(self, claim: ClaimedNudge, prepared: ReadyNudge | None, outcome: Outcome, *, now: datetime) -> None:
        self.settle_all([(claim, outcome)], now=now)

    def settle_all(self, settled: list[tuple[ClaimedNudge, Outcome]], *, now: datetime) -> None:
        self.nudges.settle(
            [(claim.id, claim.attempts, outcome, self._moved.pop(claim.id, None)) for claim, outcome in settled],
            now=now,
        )


class NudgeSender:
    """The nudge worker: the delivery engine running the nudge kind (the scheduler ticks it)."""

    def __init__(self, services: Services, *, workers: int = 4) -> None:
        self.services = services
        self.kind = NudgeKind(services)
        self.engine: DeliveryEngine[ClaimedNudge, ReadyNudge, ReadyNudge] = DeliveryEngine(
            self.kind, clock=services.clock, workers=workers, metrics=services.metrics
        )

    def tick(self, now: datetime | None = None) -> int:
        """Plan what was sent, then send every nudge due at `now`; returns how many were posted."""
        return self.engine.run(now or self.services.clock())

    def stop(self, timeout: float = 5.0) -> None:
        self.engine.stop(timeout)
