"""Offhours' storage: the small interface the app and scheduler use, over SQLAlchemy Core.

Correctness lives here, not in memory: the unique keys in bot/db.py decide "record once" and "reply once";
claims with a lease decide which process sends a pending reply or recap.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.domain.preferences import PersonRow
from bot.storage import db, migrate
from bot.storage.inbox import Inbox, anything_waiting
from bot.storage.recaps import RecapStore
from bot.storage.replies import Replies
from bot.storage.token_crypto import EncryptedInstallationStore, TokenCipher

log = logging.getLogger(__name__)

BOT_CACHE_SECONDS = 10.0
PERSON_FIELDS = ("tz", "hours", "message", "reply_within_s", "days_off", "paused")


@dataclass(frozen=True, slots=True)
class DmView:
    """What the message listener needs to know about one DM, read in one transaction."""

    recipient_token: str | None  # None: the recipient has not connected (or was not asked about)
    recipient: PersonRow | None  # their settings row; None for defaults
    sender_has_waiting: bool  # DMs wait for the sender (as a recipient) in this channel: this one answers them


class Store:
    """The database behind Offhours. One per process; thread-safe (a connection per call)."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str = "offhours",
        encryption_key: str | None = None,
        state_expiration_seconds: int = 600,
    ) -> None:
        self.url = url
        self.engine = db.make_engine(url)
        tables = {"bots_table_name": db.bots.name, "installations_table_name": db.installations.name}
        self.client_id = client_id
        self.cipher = TokenCipher(encryption_key) if encryption_key else None
        if self.cipher is not None:
            self.installation_store: SQLAlchemyInstallationStore = EncryptedInstallationStore(
                client_id=client_id, engine=self.engine, cipher=self.cipher, **tables
            )
        else:
            self.installation_store = SQLAlchemyInstallationStore(client_id=client_id, engine=self.engine, **tables)
        self.oauth_state_store = SQLAlchemyOAuthStateStore(
            expiration_seconds=state_expiration_seconds, engine=self.engine, table_name=db.oauth_states.name
        )
        self._bots: dict[tuple[str | None, str], tuple[float, dict]] = {}
        self._bots_generation = 0
        _forget_bots_on_change(self.installation_store, self.forget_cached_bots)
        self.replies = Replies(self.engine)
        self.inbox = Inbox(self.engine, self.replies)
        self.recaps = RecapStore(self.engine, self.inbox)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with db.reading(self.engine) as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with db.writing(self.engine) as conn:
            yield conn

    # --- people -----------------------------------------------------------------------------------------

    def get_person(self, team_id: str, user_id: str) -> PersonRow | None:
        with db.reading(self.engine) as conn:
            row = conn.execute(_PERSON_QUERY, {"team_id": team_id, "user_id": user_id}).mappings().first()
        return _person(row) if row else None

    def people_with_ids(self, team_id: str, user_ids: Iterable[str]) -> dict[str, PersonRow]:
        with db.reading(self.engine) as conn:
            rows = conn.execute(_PEOPLE_WITH_IDS, {"team_id": team_id, "user_ids": list(user_ids)})
            return {r["user_id"]: _person(r) for r in rows.mappings()}

    def save_person(self, team_id: str, user_id: str, *, now: datetime, **fields) -> PersonRow:
        """Create or update a person's settings; only the given fields change."""
        unknown = set(fields) - set(PERSON_FIELDS)
        if unknown:
            raise TypeError(f"unknown person fields: {sorted(unknown)}")
        p = db.people.c
        with self._tx() as conn:
            exists = conn.execute(sa.select(p.user_id).where(p.team_id == team_id, p.user_id == user_id)).first()
            if exists:
                conn.execute(
                    db.people.update()
                    .where(p.team_id == team_id, p.user_id == user_id)
                    .values(updated_at=now, **fields)
                )
            else:
                conn.execute(
                    db.insert_ignore(self.engine, db.people, ["team_id", "user_id"]).values(
                        team_id=team_id, user_id=user_id, updated_at=now, **fields
                    )
                )
                if fields:  # lost a creation race: apply the change on the row the other writer made
                    conn.execute(
                        db.people.update()
                        .where(p.team_id == team_id, p.user_id == user_id)
                        .values(updated_at=now, **fields)
                    )
            row = conn.execute(sa.select(db.people).where(p.team_id == team_id, p.user_id == user_id)).mappings().one()
        return _person(row)

    def fill_person_tz(
        self, team_id: str, user_id: str, tz: str | None, *, now: datetime, create: bool
    ) -> tuple[PersonRow | None, bool]:
        """Create the person's row with `tz` (`create`), or give their existing row `tz` only while it has none.

        A conditional write, not save_person's plain update: a zone set between the caller's read and this write
        (a concurrent `/hours tz`, another process learning the profile zone) is never replaced, and a row deleted
        meanwhile (`/hours forget`) is not brought back unless the caller is creating it. Returns the row as it now
        is (None: gone) and whether this call changed it.
        """
        p = db.people.c
        where = (p.team_id == team_id, p.user_id == user_id)
        changed = False
        with self._tx() as conn:
            if not self.still_connected(conn, team_id, user_id):
                return None, False  # `/hours forget` (or a revoke) won while Slack was being asked
            if create:
                insert = db.insert_ignore(self.engine, db.people, ["team_id", "user_id"])
                changed = (
                    conn.execute(insert.values(team_id=team_id, user_id=user_id, tz=tz, updated_at=now)).rowcount == 1
                )
            if not changed and tz is not None:
                fill = db.people.update().where(*where, p.tz.is_(None)).values(tz=tz, updated_at=now)
                changed = conn.execute(fill).rowcount == 1
            row = conn.execute(sa.select(db.people).where(*where)).mappings().first()
        return (_person(row) if row is not None else None), changed

    @staticmethod
    def still_connected(conn: sa.Connection, team_id: str, user_id: str) -> bool:
        """Inside a write transaction: whether the person still has a user token here, locked against a concurrent
        forget_person until the transaction ends (PostgreSQL FOR SHARE; SQLite's writers take turns anyway), so
        what is written after a slow Slack call cannot outlive their "forget everything"."""
        i = db.installations.c
        query = (
            sa.select(i.id)
            .where(i.team_id == team_id, i.user_id == user_id, i.user_token.is_not(None))
            .limit(1)
            .with_for_update(read=True)
        )
        return conn.execute(query).first() is not None

    def dm_view(self, team_id: str, channel_id: str, *, recipient_id: str | None, sender_id: str | None) -> DmView:
        """Everything the message listener reads, in one connection (it runs before the ack, for every DM)."""
        where = {"team_id": team_id, "channel_id": channel_id, "client_id": self.client_id,
                 "waiting_for": sender_id, "user_id": recipient_id}  # fmt: skip
        with db.reading(self.engine) as conn:
            row = conn.execute(_DM_VIEW_QUERY, where).mappings().one()
        # A None id binds as NULL, and `= NULL` matches nothing: what was not asked about reads as absent.
        token, waiting = row["dm_view_token"], row["dm_view_waiting"] is not None
        person = _person(row) if row["user_id"] is not None else None
        return DmView(recipient_token=self._decrypt(token), recipient=person, sender_has_waiting=waiting)

    # --- tokens -----------------------------------------------------------------------------------------

    def user_token(self, team_id: str, user_id: str, *, enterprise_id: str | None = None) -> str | None:
        """The person's own token (user scopes), or None when they have not connected their DMs."""
        with db.reading(self.engine) as conn:
            token = conn.execute(
                _user_token_query(enterprise_id is None),
                {"client_id": self.client_id, "enterprise_id": enterprise_id, "team_id": team_id, "user_id": user_id},
            ).scalar()
        return self._decrypt(token)

    def user_tokens(self, team_id: str, user_ids: Iterable[str]) -> dict[str, str]:
        """The tokens of those of `user_ids` who are connected, in one read (the reply sender's batches)."""
        with db.reading(self.engine) as conn:
            rows = conn.execute(
                _USER_TOKENS, {"client_id": self.client_id, "team_id": team_id, "user_ids": list(set(user_ids))}
            ).all()
        latest = dict(rows)
        return {user_id: self._decrypt(token) for user_id, token in latest.items() if token is not None}

    def bot(self, team_id: str, *, enterprise_id: str | None = None) -> dict | None:
        """The workspace's latest bot installation (token, ids, scopes).

        Asked for on every request (Bolt's authorize), so an answer is kept for BOT_CACHE_SECONDS; saving or
        deleting an installation through this Store forgets it at once. Another process may use a token
        replaced by a re-install for those seconds; Slack refuses a token that is really gone.
        """
        key = (enterprise_id, team_id)
        cached = self._bots.get(key)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        generation = self._bots_generation  # a save or delete while we read makes this answer too old to keep
        with db.reading(self.engine) as conn:
            row = conn.execute(
                _bot_query(enterprise_id is None),
                {"client_id": self.client_id, "enterprise_id": enterprise_id, "team_id": team_id},
            ).mappings().first()  # fmt: skip
        if row is None:
            return None  # not cached: a workspace that installs a moment later is served at once
        bot = {**row, "bot_token": self._decrypt(row["bot_token"])}
        if generation == self._bots_generation:
            self._bots[key] = (time.monotonic() + BOT_CACHE_SECONDS, bot)
        return bot

    def forget_cached_bots(self) -> None:
        self._bots_generation += 1
        self._bots.clear()

    def bot_token(self, team_id: str, *, enterprise_id: str | None = None) -> str | None:
        bot = self.bot(team_id, enterprise_id=enterprise_id)
        return bot["bot_token"] if bot else None

    def _decrypt(self, token: str | None) -> str | None:
        return self.cipher.decrypt(token) if self.cipher is not None else token

    def connected_user_ids(self, team_id: str) -> set[str]:
        i = db.installations.c
        with db.reading(self.engine) as conn:
            rows = conn.execute(sa.select(i.user_id).where(i.team_id == team_id, i.user_token.is_not(None)).distinct())
            return {r[0] for r in rows}

    # --- forgetting -------------------------------------------------------------------------------------

    def forget_person(self, team_id: str, user_id: str) -> None:
        """Delete everything held about one person: settings, tokens, recorded messages, pending replies."""
        with self._tx() as conn:
            # Tokens first: a writer holding still_connected()'s lock makes this wait, then its rows go below.
            conn.execute(
                db.installations.delete().where(
                    db.installations.c.team_id == team_id, db.installations.c.user_id == user_id
                )
            )
            conn.execute(db.people.delete().where(db.people.c.team_id == team_id, db.people.c.user_id == user_id))
            conn.execute(
                db.messages.delete().where(
                    db.messages.c.team_id == team_id,
                    sa.or_(db.messages.c.recipient_id == user_id, db.messages.c.sender_id == user_id),
                )
            )
            # Replies sent *to* them name them too (sender_id), as do the DM-membership cache rows.
            conn.execute(
                db.replies.delete().where(
                    db.replies.c.team_id == team_id,
                    sa.or_(db.replies.c.recipient_id == user_id, db.replies.c.sender_id == user_id),
                )
            )
            conn.execute(
                db.dm_channels.delete().where(
                    db.dm_channels.c.team_id == team_id,
                    sa.or_(db.dm_channels.c.user_a == user_id, db.dm_channels.c.user_b == user_id),
                )
            )
            conn.execute(db.recaps.delete().where(db.recaps.c.team_id == team_id, db.recaps.c.user_id == user_id))
            conn.execute(db.profiles.delete().where(db.profiles.c.team_id == team_id, db.profiles.c.user_id == user_id))

    def forget_team(self, team_id: str) -> None:
        """The app was uninstalled: delete every row of that workspace, tokens included."""
        with self._tx() as conn:
            # Tokens first, as in forget_person: a writer holding still_connected()'s lock is waited for, then
            # what it wrote goes below (deleted last, the lock order was reversed: a deadlock on PostgreSQL).
            conn.execute(db.installations.delete().where(db.installations.c.team_id == team_id))
            conn.execute(db.bots.delete().where(db.bots.c.team_id == team_id))
            for table in (db.people, db.profiles, db.dm_channels, db.messages, db.replies, db.recaps):
                conn.execute(table.delete().where(table.c.team_id == team_id))
        self.forget_cached_bots()

    def revoke_user_tokens(self, team_id: str, user_ids: Iterable[str]) -> None:
        """tokens_revoked: drop the tokens and the person's data (they disconnected)."""
        for user_id in user_ids:
            self.forget_person(team_id, user_id)

    def purge_expired(self, *, now: datetime, days: int) -> int:
        """Retention: drop what is older than `days` and finished; never a message still waiting for a recap."""
        cutoff = now - timedelta(days=days)
        m, r, c = db.messages.c, db.replies.c, db.recaps.c
        with self._tx() as conn:
            removed = conn.execute(db.messages.delete().where(m.received_at < cutoff, m.state != "pending")).rowcount
            # A message still waiting keeps its place in the recap, but not its text.
            conn.execute(db.messages.update().where(m.received_at < cutoff, m.text.is_not(None)).values(text=None))
            removed += conn.execute(db.replies.delete().where(r.received_at < cutoff, r.state != "pending")).rowcount
            removed += conn.execute(db.recaps.delete().where(c.due_at < cutoff, c.state != "pending")).rowcount
            removed += conn.execute(db.profiles.delete().where(db.profiles.c.fetched_at < cutoff)).rowcount
        return removed

    def revoke_bot_tokens(self, team_id: str) -> None:
        with self._tx() as conn:
            conn.execute(db.bots.delete().where(db.bots.c.team_id == team_id))
            conn.execute(db.installations.update().where(db.installations.c.team_id == team_id).values(bot_token=None))
        self.forget_cached_bots()


@functools.cache
def _user_token_query(no_enterprise: bool) -> sa.Select:
    # Built once: constructing the statement cost more than running it. `= NULL` never matches, hence two forms.
    i = db.installations.c
    enterprise = i.enterprise_id.is_(None) if no_enterprise else i.enterprise_id == sa.bindparam("enterprise_id")
    return (
        sa.select(i.user_token)
        .where(i.client_id == sa.bindparam("client_id"), enterprise, i.team_id == sa.bindparam("team_id"),
               i.user_id == sa.bindparam("user_id"))
        .order_by(i.installed_at.desc())
        .limit(1)
    )  # fmt: skip


@functools.cache
def _bot_query(no_enterprise: bool) -> sa.Select:
    b = db.bots.c
    enterprise = b.enterprise_id.is_(None) if no_enterprise else b.enterprise_id == sa.bindparam("enterprise_id")
    return (
        sa.select(b.bot_token, b.bot_id, b.bot_user_id, b.bot_scopes)
        .where(b.client_id == sa.bindparam("client_id"), enterprise, b.team_id == sa.bindparam("team_id"),
               b.bot_token.is_not(None))
        .order_by(b.installed_at.desc())
        .limit(1)
    )  # fmt: skip


_PERSON_QUERY = sa.select(db.people).where(
    db.people.c.team_id == sa.bindparam("team_id"), db.people.c.user_id == sa.bindparam("user_id")
)
_PEOPLE_WITH_IDS = sa.select(db.people).where(
    db.people.c.team_id == sa.bindparam("team_id"), db.people.c.user_id.in_(sa.bindparam("user_ids", expanding=True))
)
_USER_TOKENS = (
    sa.select(db.installations.c.user_id, db.installations.c.user_token)
    .where(db.installations.c.client_id == sa.bindparam("client_id"), db.installations.c.enterprise_id.is_(None),
           db.installations.c.team_id == sa.bindparam("team_id"),
           db.installations.c.user_id.in_(sa.bindparam("user_ids", expanding=True)))
    .order_by(db.installations.c.installed_at)  # the latest installation of each person wins, as in user_token
)  # fmt: skip


def _dm_view_query() -> sa.Select:
    """One statement for the listener's three questions (it runs before every ack, and each statement costs more
    in SQLAlchemy than in the database): does anything wait for `waiting_for` in this channel, what is `user_id`'s
    token (as user_token reads it), and their settings row (a left join from one row: always one row back)."""
    waiting = anything_waiting(sa.bindparam("waiting_for")).scalar_subquery()
    token = _user_token_query(True).scalar_subquery()
    p = db.people.c
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    return sa.select(waiting.label("dm_view_waiting"), token.label("dm_view_token"), db.people).select_from(
        one.outerjoin(db.people, sa.and_(p.team_id == sa.bindparam("team_id"), p.user_id == sa.bindparam("user_id")))
    )


_DM_VIEW_QUERY = _dm_view_query()


def _forget_bots_on_change(installation_store: SQLAlchemyInstallationStore, forget: Callable[[], None]) -> None:
    """Wrap the installation store's writers (Bolt's OAuth flow calls them) so that Store.bot never serves a
    bot this process has just replaced or deleted."""
    for name in ("save", "save_bot", "delete_bot", "delete_installation", "delete_all"):
        method = getattr(installation_store, name)

        @functools.wraps(method)
        def forgetting(*args, _method=method, **kwargs):
            try:
                return _method(*args, **kwargs)
            finally:
                forget()

        setattr(installation_store, name, forgetting)


def _person(row) -> PersonRow:
    return PersonRow(
        team_id=row["team_id"],
        user_id=row["user_id"],
        tz=row["tz"],
        hours=row["hours"],
        message=row["message"],
        reply_within_s=row["reply_within_s"],
        days_off=row["days_off"] or "",
        paused=bool(row["paused"]),
    )
