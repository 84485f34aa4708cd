"""Channel mentions and group DMs (issue 20): who wants them answered (`mention_settings`), who may be watched
(connected with the mention scopes granted), and settling recorded mentions the person answered in the channel.

Mentions are recorded in the inbox (after_hours_messages, `source` "mention" or "mpim") and answered through the
reply outbox like DMs, so the once-per-sender-per-window rule covers DMs and mentions together.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from bot.domain.mentions import GROUP_DM_MEMBERS_SCOPE, MENTION_SCOPES
from bot.storage import schema
from bot.storage.engine import reading, upsert, writing

__all__ = ["MENTION_SCOPES", "Mentions", "ReadFailed"]

# What a failed read of the database raises, for callers that may carry on with what they read before.
ReadFailed = sa.exc.SQLAlchemyError

_s = schema.mention_settings.c
_i = schema.installations.c
_m = schema.messages.c

_CHOICE = sa.select(_s.enabled).where(_s.team_id == sa.bindparam("team_id"), _s.user_id == sa.bindparam("user_id"))
_SCOPES = (
    sa.select(_i.user_scopes)
    .where(_i.client_id == sa.bindparam("client_id"), _i.team_id == sa.bindparam("team_id"),
           _i.user_id == sa.bindparam("user_id"), _i.user_token.is_not(None))
    .order_by(_i.installed_at.desc())
    .limit(1)
)  # fmt: skip
_CONNECTED = (
    sa.select(_i.team_id, _i.user_id, _i.user_scopes)
    .where(_i.client_id == sa.bindparam("client_id"), _i.user_token.is_not(None), _i.team_id.is_not(None),
           _i.user_id.is_not(None))
    .order_by(_i.installed_at)  # the latest installation of each person wins
)  # fmt: skip
_SETTINGS = sa.select(_s.team_id, _s.user_id, _s.enabled)


def scopes_of(text: str | None) -> frozenset[str]:
    return frozenset(s.strip() for s in (text or "").split(",") if s.strip())


def has_mention_scopes(scopes: frozenset[str]) -> bool:
    return all(scope in scopes for scope in MENTION_SCOPES)


class Mentions:
    def __init__(self, engine: sa.Engine, *, client_id: str) -> None:
        self.engine = engine
        self.client_id = client_id

    def choice(self, team_id: str, user_id: str) -> bool | None:
        """What the person chose; None: they never did (the config's `mentions.enabled` applies)."""
        with reading(self.engine) as conn:
            value = conn.execute(_CHOICE, {"team_id": team_id, "user_id": user_id}).scalar()
        return None if value is None else bool(value)

    def choose(self, team_id: str, user_id: str, *, enabled: bool, now: datetime) -> None:
        with writing(self.engine) as conn:
            values = {"team_id": team_id, "user_id": user_id, "enabled": enabled, "updated_at": now}
            conn.execute(upsert(self.engine, schema.mention_settings, ["team_id", "user_id"], values))

    def granted_scopes(self, team_id: str, user_id: str) -> frozenset[str]:
        """The user scopes of the person's latest connection (empty when not connected)."""
        with reading(self.engine) as conn:
            text = conn.execute(_SCOPES, {"client_id": self.client_id, "team_id": team_id, "user_id": user_id}).scalar()
        return scopes_of(text)

    def watched(self, *, default_enabled: bool) -> dict[str, set[str]]:
        """team -> the people whose channel mentions and group DMs are answered: connected, with the mention scopes
        granted, and on (by choice, or by the default). Two statements, whatever the number of people."""
        with reading(self.engine) as conn:
            latest = {(t, u): s for t, u, s in conn.execute(_CONNECTED, {"client_id": self.client_id}).all()}
            chosen = {(t, u): bool(e) for t, u, e in conn.execute(_SETTINGS).all()}
        watched: dict[str, set[str]] = {}
        for (team_id, user_id), scopes in latest.items():
            if chosen.get((team_id, user_id), default_enabled) and has_mention_scopes(scopes_of(scopes)):
                watched.setdefault(team_id, set()).add(user_id)
        return watched

    def group_dm_readers(self) -> dict[str, set[str]]:
        """team -> the connected people whose token may list a group DM's members (mpim:read granted)."""
        with reading(self.engine) as conn:
            latest = conn.execute(_CONNECTED, {"client_id": self.client_id}).all()
        readers: dict[str, set[str]] = {}
        for team_id, user_id, scopes in latest:
            if GROUP_DM_MEMBERS_SCOPE in scopes_of(scopes):
                readers.setdefault(team_id, set()).add(user_id)
        return readers

    def answered(self, team_id: str, recipient_id: str, channel_id: str, *, ts: str, thread_ts: str | None) -> int:
        """The person wrote in `channel_id` (at `ts`, in thread `thread_ts` if a thread reply): the mentions waiting
        for them there are answered — in that thread, or, written in the channel itself, every earlier one."""
        # Slack's ts are fixed-width decimal strings of one era: they sort as text.
        where = _m.thread_ts == thread_ts if thread_ts and thread_ts != ts else _m.ts < ts
        r = schema.recaps.c
        unsent = sa.select(r.id).where(r.state == "pending")
        mine = (_m.team_id == team_id, _m.recipient_id == recipient_id, _m.channel_id == channel_id, _m.source != "dm")
        with reading(self.engine) as conn:
            # Most of a person's messages answer nothing that waits: a read spares them a write transaction.
            waiting = sa.select(_m.id).where(*mine, sa.or_(_m.state == "pending", _m.state == "recapped")).limit(1)
            if conn.execute(waiting).first() is None:
                return 0
        with writing(self.engine) as conn:
            return conn.execute(
                schema.messages.update()
                .where(
                    _m.team_id == team_id, _m.recipient_id == recipient_id, _m.channel_id == channel_id,
                    _m.source != "dm", where,
                    sa.or_(_m.state == "pending", sa.and_(_m.state == "recapped", _m.recap_id.in_(unsent))),
                )
                .values(state="answered")
            ).rowcount  # fmt: skip
