"""Status updates as a kind of delivery: each scheduler tick plans what a person's Slack status should be and
records what is due; the delivery engine (bot/workers/engine.py) claims it, sets it with the person's token and
settles it once.

Planning (`StatusSync.plan`): while status sync is on and the person is off, Offhours' status for the window is
recorded once (its unique key); a change of text or emoji during the window records a follow-up; sync turned off,
a pause or a change of hours that ends the window records a clear (or, with `status replace`, a restore). Nothing
is recorded while an update of the person's is still pending, nor for a person whose token lacks the scopes.

Delivering (`StatusKind`): the profile is read first (users.profile.get); Offhours writes only over an empty status
or its own (the text and emoji it last set); over the person's own it writes nothing for that window unless they
chose `status replace`, and then keeps their status to put back at the window's end. A set is idempotent, so an
attempt of unknown outcome simply reads and sets again. A window already over is never set (caught up only while
open); a refusal for good (revoked token, missing scope) settles the update, shown in /hours show and Home.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot import status_sync as shared
from bot.domain import status as domain
from bot.domain.delivery import DeliveryState, Outcome
from bot.domain.status import SlackStatus, StatusPlan, StatusSettings
from bot.services import Services
from bot.slack.client import sending_client, slack_code
from bot.status_sync import Ours, ours
from bot.storage.status import STATUS_LEASE, ClaimedStatus, StatusRow
from bot.workers.engine import DeliveryEngine
from bot.workers.kind import ClaimLost, KindDefaults, Posted

log = logging.getLogger(__name__)

S = DeliveryState
HISTORY = timedelta(days=1)  # how far back the planner looks for a window to clear or restore
MAX_BATCHES_PER_TICK = 100


def status_settings(services: Services, team_id: str, user_id: str) -> StatusSettings:
    """The person's status sync settings: their choice merged with config.yaml's `status`."""
    return shared.status_settings(services.config, services.store.status, team_id, user_id)


@dataclass(frozen=True, slots=True)
class ReadyStatus:
    token: str
    ours: Ours
    replace: bool
    now: datetime
    kept: tuple[str, str, int] | None = None  # the person's own status an earlier attempt of this set kept


@dataclass(frozen=True, slots=True)
class Done:
    """What a post did, for settle: whether Offhours' status is now on the profile, and what happened."""

    applied: bool
    result: str
    saved: tuple[str, str, int] | None = None


class StatusKind(KindDefaults[ClaimedStatus, ReadyStatus]):
    """The status kind of delivery (see bot/workers/engine.py's DeliveryKind)."""

    name = "status"
    metric_name = "status"
    lease = STATUS_LEASE
    max_attempts: int | None = None  # retried with backoff while the window is open; then it expires
    look_up_after_5xx = False  # setting a status twice is harmless: the next attempt reads and sets again

    def __init__(self, services: Services) -> None:
        self.services = services
        self.store = services.store
        self.client = sending_client(services.client)
        self._done: dict[int, Done] = {}
        self._lock = threading.Lock()

    def lag_from(self, claim: ClaimedStatus) -> datetime | None:
        return None

    def claims(
        self, at: Callable[[], datetime], wait: Callable[[], None]
    ) -> Generator[tuple[datetime, list[ClaimedStatus]]]:
        for _ in range(MAX_BATCHES_PER_TICK):
            now = at()
            batch = self.store.status.claim_due(now=now)
            if not batch:
                return
            yield now, batch

    def prepare(
        self, batch: list[ClaimedStatus], *, now: datetime
    ) -> list[tuple[ClaimedStatus, ReadyStatus | Outcome]]:
        return [(claim, self._prepare(claim, now=now)) for claim in batch]

    def _prepare(self, claim: ClaimedStatus, *, now: datetime) -> ReadyStatus | Outcome:
        token = self.store.user_token(claim.team_id, claim.user_id)
        if token is None:
            return Outcome(S.EXPIRED, error="not_connected")
        if claim.what == "dnd":
            return self._prepare_dnd(claim, token, now=now)
        if domain.missing_scopes(self.store.status.granted_scopes(claim.team_id, claim.user_id)):
            return Outcome(S.FAILED, error="missing_scope")  # checked before use: nothing is asked of Slack
        settings = status_settings(self.services, claim.team_id, claim.user_id)
        if claim.action == "set":
            if now >= claim.window_end:
                return Outcome(S.EXPIRED, error="window_over")  # caught up only while the window is open
            wanted = domain.plan(self.services.people.get(claim.team_id, claim.user_id), settings, now=now)
            if wanted is None or (wanted.window_end, wanted.text, wanted.emoji) != (
                claim.window_end,
                claim.text,
                claim.emoji,
            ):
                return Outcome(S.EXPIRED, error="changed")  # the planner records what is wanted now
        history = self.store.status.history(claim.team_id, claim.user_id)
        if claim.action != "set" and now < claim.window_end:
            # A clear (or restore) of a window still open: sync turned back on (or resumed) before it went out
            # leaves Offhours' status wanted as it is.
            wanted = domain.plan(self.services.people.get(claim.team_id, claim.user_id), settings, now=now)
            mine = ours(history, before=claim.id)
            if wanted is not None and (wanted.window_end, wanted.text, wanted.emoji) == (
                claim.window_end,
                mine.text,
                mine.emoji,
            ):
                return Outcome(S.EXPIRED, error="changed")
        row = next((r for r in history if r.id == claim.id), None)
        kept = None
        if row is not None and row.saved_text is not None:
            kept = (row.saved_text, row.saved_emoji or "", row.saved_expiration or 0)
        # Only a window's first set may replace the person's own status: one a later set finds (after new text or
        # emoji, a resume, or new hours that moved the window) was set during the window, and is left alone.
        earlier = [r for r in history if r.id < claim.id and r.action == "set" and r.state == "sent"]
        replace = settings.replace and not any(r.window_end == claim.window_end or r.window_end > now for r in earlier)
        return ReadyStatus(token=token, ours=ours(history, before=claim.id), replace=replace, now=now,
                           kept=kept)  # fmt: skip

    def _prepare_dnd(self, claim: ClaimedStatus, token: str, *, now: datetime) -> ReadyStatus | Outcome:
        granted = self.store.status.granted_scopes(claim.team_id, claim.user_id)
        if domain.missing_scopes(granted, domain.DND_SCOPES):
            return Outcome(S.FAILED, error="missing_scope")
        settings = status_settings(self.services, claim.team_id, claim.user_id)
        prefs = self.services.people.get(claim.team_id, claim.user_id)
        if claim.action == "snooze":
            if now >= claim.window_end:
                return Outcome(S.EXPIRED, error="window_over")
            if domain.snooze_until(prefs, settings, now=now) != claim.window_end:
                return Outcome(S.EXPIRED, error="changed")
        elif domain.snooze_until(prefs, settings, now=now) == claim.window_end:
            return Outcome(S.EXPIRED, error="changed")  # DND turned back on before the end of the snooze went out
        return ReadyStatus(token=token, ours=Ours(), replace=False, now=now)

    def compose(self, claim: ClaimedStatus, prepared: ReadyStatus, *, now: datetime) -> ReadyStatus | Outcome:
        return prepared

    def look_up(self, claim: ClaimedStatus, prepared: ReadyStatus) -> Posted | None:
        return None  # post reads the profile first: a set an earlier attempt made is recognised as Offhours'

    def renew(self, claim: ClaimedStatus, *, until: datetime) -> bool:
        return self.store.status.renew(claim, until=until)

    def post(self, claim: ClaimedStatus, prepared: ReadyStatus) -> Posted:
        if claim.what == "dnd":
            done = self._snooze(claim, prepared)
            with self._lock:
                self._done[claim.id] = done
            return Posted(channel=None, ts=None)
        profile = self.client.users_profile_get(token=prepared.token).get("profile") or {}
        current = SlackStatus(
            text=str(profile.get("status_text") or ""),
            emoji=str(profile.get("status_emoji") or ""),
            expiration=int(profile.get("status_expiration") or 0),
        )
        mine = domain.is_ours(current, text=prepared.ours.text, emoji=prepared.ours.emoji) or domain.is_ours(
            current, text=claim.text, emoji=claim.emoji
        )
        done = self._decide(claim, prepared, current=current, mine=mine)
        with self._lock:
            self._done[claim.id] = done
        return Posted(channel=None, ts=None)

    def _decide(self, claim: ClaimedStatus, prepared: ReadyStatus, *, current: SlackStatus, mine: bool) -> Done:
        token = prepared.token
        if claim.action == "set":
            saved = (prepared.kept or prepared.ours.saved) if mine else None
            if not (current.empty or mine):
                if not prepared.replace:
                    return Done(applied=False, result="own")  # the person's own status: left alone this window
                saved = (current.text, current.emoji, current.expiration)
                # Kept before it is replaced: an attempt whose answer is lost must not lose the person's status.
                if not self.store.status.keep(claim, saved):
                    raise ClaimLost  # another process has it now: it reads the profile and decides for itself
            self._set(token, claim.text or "", claim.emoji or "", int(claim.window_end.timestamp()))
            return Done(applied=True, result="set", saved=saved)
        if not mine and not (claim.action == "restore" and current.empty):
            return Done(applied=False, result="left")  # changed by the person since: not Offhours' to touch
        saved = prepared.ours.saved
        now_s = int(prepared.now.timestamp())
        if claim.action == "restore" and saved is not None and (saved[2] == 0 or saved[2] > now_s):
            self._set(token, saved[0], saved[1], saved[2])
            return Done(applied=False, result="restored")
        if mine:
            self._set(token, "", "", 0)
            return Done(applied=False, result="cleared")
        return Done(applied=False, result="left")

    def _snooze(self, claim: ClaimedStatus, prepared: ReadyStatus) -> Done:
        """Snooze notifications to the window's end (setting it again only changes the length), or end the snooze."""
        if claim.action == "snooze":
            minutes = domain.snooze_minutes(claim.window_end, now=prepared.now)
            self.client.dnd_setSnooze(token=prepared.token, num_minutes=minutes)
            return Done(applied=True, result="snoozed")
        try:
            self.client.dnd_endSnooze(token=prepared.token)
        except SlackApiError as e:
            if slack_code(e) != "snooze_not_active":
                raise
            return Done(applied=False, result="not_snoozed")  # ended already (by the person, or by Slack)
        return Done(applied=False, result="unsnoozed")

    def _set(self, token: str, text: str, emoji: str, expiration: int) -> None:
        self.client.users_profile_set(
            token=token, profile={"status_text": text, "status_emoji": emoji, "status_expiration": expiration}
        )

    def settle(self, claim: ClaimedStatus, prepared: ReadyStatus | None, outcome: Outcome, *, now: datetime) -> None:
        with self._lock:
            done = self._done.pop(claim.id, None)
        if outcome.state is S.SENT and done is not None:
            self.store.status.settle(claim, outcome, now=now, applied=done.applied, result=done.result,
                                     saved=done.saved)  # fmt: skip
            log.info("status id=%s action=%s result=%s", claim.id, claim.action, done.result)
        else:
            self.store.status.settle(claim, outcome, now=now)


class StatusSync:
    """The status worker: plan what is due, then deliver it on the engine. `tick(now)` is a plain function of now."""

    def __init__(self, services: Services, *, workers: int = 4) -> None:
        self.services = services
        self.kind = StatusKind(services)
        self.engine: DeliveryEngine[ClaimedStatus, ReadyStatus, ReadyStatus] = DeliveryEngine(
            self.kind, clock=services.clock, workers=workers, metrics=services.metrics
        )

    def tick(self, now: datetime | None = None) -> int:
        """Record what is due at `now` and deliver it; returns how many updates reached Slack."""
        now = now or self.services.clock()
        self.plan(now)
        return self.engine.run(now)

    def plan(self, now: datetime) -> int:
        """Record every status update due at `now`; returns how many were recorded."""
        services, store = self.services, self.services.store.status
        people = store.candidates(default_enabled=services.config.status.enabled, since=now - HISTORY)
        histories = store.histories(people, since=now - HISTORY)
        by_team: dict[str, list[str]] = {}
        for team_id, user_id in people:
            by_team.setdefault(team_id, []).append(user_id)
        recorded = 0
        for team_id, user_ids in by_team.items():
            prefs = services.people.get_many(team_id, user_ids)
            choices = store.choices(team_id, user_ids)
            scopes = store.granted_scopes_many(team_id, user_ids)
            c = services.config.status
            for user_id in user_ids:
                history = histories.get((team_id, user_id), [])
                settings = domain.settings(choices.get(user_id), enabled=c.enabled, text=c.text, emoji=c.emoji)
                granted = scopes.get(user_id)
                # Someone without the scopes is told in /hours status on, /hours show and Home how to grant them.
                if not domain.missing_scopes(granted):
                    wanted = domain.plan(prefs[user_id], settings, now=now)
                    recorded += self._plan_one(team_id, user_id, wanted, [r for r in history if r.what == "status"],
                                               now=now)  # fmt: skip
                if not domain.missing_scopes(granted, domain.DND_SCOPES):
                    until = domain.snooze_until(prefs[user_id], settings, now=now)
                    recorded += self._plan_dnd(team_id, user_id, until, [r for r in history if r.what == "dnd"],
                                               now=now)  # fmt: skip
        return recorded

    def _plan_one(
        self, team_id: str, user_id: str, wanted: StatusPlan | None, history: list[StatusRow], *, now: datetime
    ) -> int:
        if any(row.state == "pending" for row in history):
            return 0  # one update of a person's at a time
        store = self.services.store.status

        def record(window_end: datetime, action: str, plan: StatusPlan | None = None) -> int:
            seq = 1 + max((r.seq for r in history if r.window_end == window_end), default=-1)
            return int(store.record(team_id, user_id, window_end=window_end, seq=seq, action=action, due_at=now,
                                    now=now, text=plan.text if plan else None,
                                    emoji=plan.emoji if plan else None))  # fmt: skip

        current = ours(history)
        active = next((r for r in history if r.state == "sent"), None)
        on_profile = active if active is not None and active.action == "set" and active.applied else None
        if wanted is not None:
            same = [r for r in history if r.window_end == wanted.window_end]
            if not same:
                return record(wanted.window_end, "set", wanted)
            latest = same[0]
            if latest.action != "set" and latest.state == "sent":
                return record(wanted.window_end, "set", wanted)  # resumed, or turned on again, in the window
            if latest.action == "set" and latest.state == "expired" and latest.last_error == "changed":
                return record(wanted.window_end, "set", wanted)
            if latest.state == "failed" and (latest.text, latest.emoji) != (wanted.text, wanted.emoji):
                return record(wanted.window_end, "set", wanted)  # refused (an unknown emoji, say), then changed
            if (
                latest.action == "set"
                and latest.state == "sent"
                and latest.applied
                and ((latest.text, latest.emoji) != (wanted.text, wanted.emoji))
            ):
                return record(wanted.window_end, "set", wanted)  # new text or emoji: only over Offhours' own
            return 0
        if on_profile is None:
            return 0
        if on_profile.window_end > now:
            # Sync off, paused, or the window ended early (new hours): clear it, or give the person's own back.
            return record(on_profile.window_end, "restore" if current.saved is not None else "clear")
        if current.saved is not None:
            return record(on_profile.window_end, "restore")  # the window is over: their own status back
        return 0

    def _plan_dnd(
        self, team_id: str, user_id: str, until: datetime | None, history: list[StatusRow], *, now: datetime
    ) -> int:
        """Notifications snoozed to the window's end; the snooze moved or ended early when the window changes."""
        if any(row.state == "pending" for row in history):
            return 0
        latest = next((r for r in history if r.state == "sent"), None)
        snoozed = latest if latest is not None and latest.action == "snooze" and latest.window_end > now else None

        def record(window_end: datetime, action: str) -> int:
            seq = 1 + max((r.seq for r in history if r.window_end == window_end), default=-1)
            return int(self.services.store.status.record(team_id, user_id, window_end=window_end, seq=seq,
                                                         action=action, due_at=now, now=now, what="dnd"))  # fmt: skip

        if until is not None:
            same = [r for r in history if r.window_end == until]
            if snoozed is not None and snoozed.window_end == until:
                return 0
            if not same or same[0].state == "sent" or (same[0].state == "expired" and same[0].last_error == "changed"):
                return record(until, "snooze")  # a new window, or one that moved (the snooze's length changes)
            return 0
        if snoozed is not None:
            return record(snoozed.window_end, "unsnooze")  # the window ended early: so does the snooze
        return 0

    def stop(self, timeout: float = 5.0) -> None:
        self.engine.stop(timeout)
