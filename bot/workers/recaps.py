"""Recaps as a kind of delivery: one tick claims what is due, builds each recap and posts it with the bot token.

The delivery engine (bot/workers/engine.py) runs the posting, the re-check, the lookups and the retries. What is
particular to recaps lives here: due people are claimed in rounds of up to `due_page` (their due messages move
into the recap with the claim); a recap with nothing left unanswered is not sent at all; a 429 on a post holds
the whole workspace until Retry-After (every recap tried meanwhile would be refused too); a 5xx is retried
without looking first (lookups, conversations.history, are allowed about once a minute per workspace); a recap
refused for good gives its messages back, due at the person's next working start. `tick(now)` is a plain function
of `now`; the scheduler calls it every `recap.poll_seconds`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.domain.delivery import IN_FLIGHT, DeliveryState, Outcome
from bot.domain.recap import Recap
from bot.services import Services
from bot.slack.blocks.recap import recap_fallback_text
from bot.slack.client import sending_client, slack_code
from bot.slack.recap_message import BuiltRecap, RecapRenderer, RecapToBuild
from bot.storage.recaps import RECAP_LEASE, ClaimedRecap, SentRecap
from bot.workers.engine import DeliveryEngine
from bot.workers.group_commit import GroupCommit
from bot.workers.kind import KindDefaults, Posted

log = logging.getLogger(__name__)

S = DeliveryState
RECAP_EVENT_TYPE = "offhours_recap"  # message metadata on every recap, to find it again after a timeout
MAX_ROUNDS_PER_TICK = 100  # of up to 1,000 people each: a bound, not a target
CLAIM_BATCH = 50  # people claimed in one transaction, and built with one read per table


@dataclass(frozen=True, slots=True)
class PreparedRecap:
    """A claimed recap, built with its batch: its content, and the bot token to post it with."""

    built: BuiltRecap
    token: str | None


@dataclass(frozen=True, slots=True)
class ReadyRecap:
    """A claimed recap, built: what to post, with which token, and when the tick that built it ran."""

    content: Recap
    tz: str
    blocks: list[dict]
    token: str | None
    now: datetime


class RecapKind(KindDefaults[ClaimedRecap, ReadyRecap]):
    """The recap kind of delivery (see bot/workers/engine.py's DeliveryKind)."""

    name = "recap"
    metric_name = "recap"
    lease = RECAP_LEASE
    max_attempts: int | None = None  # retryable failures are retried for as long as they last (backoff to 10 min)
    # After a 5xx or an internal_error Slack may have posted it, but the retry posts without looking first.
    # Looking (conversations.history) is allowed about once a minute per workspace, so after an incident that
    # failed 1,000 recaps the last would go out some 16 hours late; a person may rather get a recap twice.
    # Timeouts and crashes, which fail one post at a time, are still looked up.
    look_up_after_5xx = False

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.recaps = services.store.recaps
        self.client = sending_client(services.client)
        self.renderer = RecapRenderer(services, self.client)
        self.due_page = 1000  # people per due query
        # Workspace -> until when Slack asked us to stop posting (429 Retry-After). Every recap tried meanwhile
        # would only be refused too, each after a full build, its permalinks and a post; held back instead,
        # it waits for that moment at the cost of one write (bench/RESULTS.md, morning fan-out).
        self._held_until: dict[str, datetime] = {}
        self._held_lock = threading.Lock()
        self._bot_tokens: dict[str, str | None] = {}
        # Posted recaps are recorded a group at a time (one transaction for all the posting threads' answers).
        self._sent: GroupCommit[SentRecap] = GroupCommit(lambda sent: self.recaps.mark_sent_many(sent))

    def lag_from(self, claim: ClaimedRecap) -> datetime | None:
        return claim.due_at

    def claims(
        self, at: Callable[[], datetime], wait: Callable[[], None]
    ) -> Generator[tuple[datetime, list[ClaimedRecap]]]:
        now = at()
        self._bot_tokens = {}  # one lookup per workspace per tick, not one per recap
        retries = self.recaps.claim_retries(now=now)
        if retries:
            yield now, retries
        # due_people answers at most `due_page` (1,000) people: keep claiming until a round finds no one new, so a
        # morning with more than that is sent in one tick instead of 1,000 per poll interval. A person claimed by
        # another process (or leased) is not claimed again, which ends the loop. Each recap is posted as soon as
        # it is claimed, so the (serial) claims overlap the posting (bench/RESULTS.md, morning fan-out).
        for _round in range(MAX_ROUNDS_PER_TICK):
            claimed = 0
            # Held workspaces are left out of the query, so that they cannot fill its page and starve others.
            due = self.recaps.due_people(now=now, limit=self.due_page, skip_teams=self.held_teams(now))
            for first in range(0, len(due), CLAIM_BATCH):
                # A held workspace's people are claimed once Slack lets us post there again (a later tick).
                people = [p for p in due[first : first + CLAIM_BATCH] if self.held_until(p[0], now=now) is None]
                # Leased from the moment of the claim, not from the tick's start: a morning of 50,000 recaps keeps
                # one tick going for minutes, and a claim made then with the tick's `now` would be born stale (every
                # post re-checked in the database, or taken over by another process at once).
                claimed_at = max(now, self.services.clock())
                batch = self.recaps.claim_new_many(people, now=claimed_at) if people else []
                if batch:
                    yield claimed_at, batch
                    claimed += len(batch)
            if claimed == 0:
                break
            # Let this round's deliveries move their messages out of "pending" before asking again.
            wait()

    def prepare(
        self, batch: list[ClaimedRecap], *, now: datetime
    ) -> list[tuple[ClaimedRecap, PreparedRecap | Outcome]]:
        """Build the batch's recaps with one read per table: what each holds now (the re-check: a conversation
        answered or deleted since the claim has left it), then per workspace the settings, tokens, urgent notes
        and promises. A recap with nothing left unanswered is settled at once (not sent at all)."""
        held = self.recaps.attach_and_read_many(batch, now=now)
        by_team: dict[str, list[ClaimedRecap]] = {}
        for claim in batch:
            by_team.setdefault(claim.team_id, []).append(claim)
        prepared: dict[int, PreparedRecap | Outcome] = {}
        for team_id, claims in by_team.items():
            build = []
            for claim in claims:
                outcome = self._held(claim, now=now)
                if outcome is None and not any(not m.done for m in held[claim.id]):
                    outcome = Outcome(S.EMPTY)  # everything was answered: no recap at all
                if outcome is not None:
                    prepared[claim.id] = outcome
                else:
                    build.append(RecapToBuild(claim.id, claim.user_id, claim.due_at, held[claim.id]))
            if build:
                token = self._bot_token(team_id)
                for recap_id, built in self.renderer.build_many(team_id, build, now=now, bot_token=token).items():
                    prepared[recap_id] = PreparedRecap(built=built, token=token)
        return [(claim, prepared[claim.id]) for claim in batch]

    def compose(self, claim: ClaimedRecap, prepared: PreparedRecap, *, now: datetime) -> ReadyRecap | Outcome:
        held = self._held(claim, now=now)  # Slack may have rate-limited the workspace since the batch was built
        if held is not None:
            return held
        built = prepared.built
        return ReadyRecap(content=built.content, tz=built.tz, blocks=self.renderer.blocks(claim.id, built),
                          token=prepared.token, now=now)  # fmt: skip

    def _held(self, claim: ClaimedRecap, *, now: datetime) -> Outcome | None:
        held = self.held_until(claim.team_id, now=now)
        if held is None:
            return None
        # Not tried: if the attempt before was of unknown outcome, the next one must still look first.
        if claim.outcome_unknown:
            return Outcome(S.OUTCOME_UNKNOWN, error=claim.last_error or IN_FLIGHT, retry_at=held)
        return Outcome(S.NOT_POSTED, error="ratelimited", retry_at=held)

    def _bot_token(self, team_id: str) -> str | None:
        if team_id not in self._bot_tokens:
            self._bot_tokens[team_id] = self.store.bot_token(team_id)
        return self._bot_tokens[team_id]

    def look_up(self, claim: ClaimedRecap, prepared: ReadyRecap) -> Posted | None:
        """This recap if an earlier attempt posted it, found by its metadata in the app's DM.

        The bot has no history scope; the person's own token (im:history) reads their DM with the app.
        """
        user_token = self.store.user_token(claim.team_id, claim.user_id)
        if user_token is None:
            return None
        channel = self.client.conversations_open(token=prepared.token, users=claim.user_id)["channel"]["id"]
        history = self.client.conversations_history(
            token=user_token, channel=channel, oldest=f"{claim.due_at.timestamp():.6f}", include_all_metadata=True,
            limit=100,
        )  # fmt: skip
        for message in history.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == RECAP_EVENT_TYPE and payload.get("recap_id") == str(claim.id):
                return Posted(channel=channel, ts=message.get("ts"))
        return None

    def renew(self, claim: ClaimedRecap, *, until: datetime) -> bool:
        return self.recaps.renew(claim.id, attempts=claim.attempts, until=until)

    def post(self, claim: ClaimedRecap, prepared: ReadyRecap) -> Posted:
        response = self.client.chat_postMessage(
            token=prepared.token,
            channel=claim.user_id,
            text=recap_fallback_text(prepared.content, prepared.tz),
            blocks=prepared.blocks,
            metadata={"event_type": RECAP_EVENT_TYPE, "event_payload": {"recap_id": str(claim.id)}},
        )
        return Posted(channel=response.get("channel"), ts=response.get("ts"))

    def rate_limited(self, claim: ClaimedRecap, *, until: datetime) -> None:
        # Slack's answer to a post holds for the workspace's other recaps too (a per-channel limit holds it only
        # for the Retry-After it names, a second or so).
        self.hold(claim.team_id, until)

    def settle(self, claim: ClaimedRecap, prepared: ReadyRecap | None, outcome: Outcome, *, now: datetime) -> None:
        if outcome.state is S.SENT and prepared is not None:
            late, channel = prepared.content.late, outcome.channel or claim.user_id
            self._sent.add(SentRecap(claim.id, claim.attempts, channel, outcome.ts, prepared.now, late))
        elif outcome.state is S.FAILED:
            # Slack refused for good (the bot's DM is gone, say). The messages are not lost: they go back to
            # waiting, due at the person's next working start, and come in the next recap.
            prefs = self.services.people.get(claim.team_id, claim.user_id)
            self.recaps.give_up(claim.id, attempts=claim.attempts, error=outcome.error or "failed",
                                release_until=prefs.schedule.next_start(now))  # fmt: skip
        else:
            self.recaps.settle(claim.id, outcome, attempts=claim.attempts)

    def settled_batch(self) -> None:
        self._sent.flush()

    # --- workspaces held back after a 429 ---------------------------------------------------------------------

    def held_until(self, team_id: str, *, now: datetime) -> datetime | None:
        """When posting to this workspace may resume, if Slack has rate-limited it until after `now`."""
        until = self._held_until.get(team_id)
        return until if until is not None and now < until else None

    def held_teams(self, now: datetime) -> list[str]:
        return [team_id for team_id, until in list(self._held_until.items()) if now < until]

    def hold(self, team_id: str, until: datetime) -> None:
        """Post nothing to this workspace before `until` (what a 429 on a post does)."""
        with self._held_lock:
            self._held_until[team_id] = max(until, self._held_until.get(team_id, until))


class RecapSender:
    """The recap worker: the delivery engine running the recap kind."""

    def __init__(self, services: Services, *, workers: int = 8) -> None:
        self.services = services
        self.workers = workers
        self.kind = RecapKind(services)
        self.engine: DeliveryEngine[ClaimedRecap, PreparedRecap, ReadyRecap] = DeliveryEngine(
            self.kind, clock=services.clock, workers=workers, metrics=services.metrics
        )

    @property
    def due_page(self) -> int:
        return self.kind.due_page

    @due_page.setter
    def due_page(self, value: int) -> None:
        self.kind.due_page = value

    def tick(self, now: datetime | None = None) -> int:
        """Send every recap due at `now`; returns how many were posted."""
        return self.engine.run(now or self.services.clock())

    def deliver(self, recap: ClaimedRecap, *, now: datetime) -> bool:
        """Post one claimed recap (its messages are attached here if the claim did not)."""
        return self.engine.deliver_batch([recap], now=now) == 1

    def held_until(self, team_id: str, *, now: datetime) -> datetime | None:
        return self.kind.held_until(team_id, now=now)

    def hold(self, team_id: str, until: datetime) -> None:
        self.kind.hold(team_id, until)

    def stop(self, timeout: float = 5.0) -> None:
        """Post nothing more; what is claimed and not yet posted is handed back, due at once."""
        self.engine.stop(timeout)


def _code(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return slack_code(error)
    return type(error).__name__
