"""The one installation/token store: Bolt's tables (slack_installations, slack_bots, slack_oauth_states).

The only reader of Slack tokens, and the only place they are encrypted and decrypted (token_crypto's cipher).
Bolt's OAuth flow writes through `installation_store`: slack_sdk's SQLAlchemy store with the cipher applied
(`EncryptedSQLAlchemyStore`), behind slack_sdk's CacheableInstallationStore given an expiry and thread safety
(`ExpiringInstallationStore`). The bot that Bolt's authorize asks for on every request is read through that cache.
The reads slack_sdk's interface has no shape for — a person's token, a batch of them in one statement, the
statement dm_view embeds — are statements here, never cached: a disconnect must show at once in every process.

The cache, in one process: a save or delete through `installation_store`, and a change made here or by
bot/storage/forget.py inside `changing()`, is seen at once; a read that overlapped such a change is not kept.
Across processes: another process's re-install or uninstall is seen within `cache_seconds` (the documented limit;
Slack refuses a token that is really gone, and the workers treat that as a revoke).
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from slack_sdk.oauth.installation_store import Bot, Installation, InstallationStore
from slack_sdk.oauth.installation_store.cacheable_installation_store import CacheableInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy.dialects import postgresql

from bot.storage import schema
from bot.storage.engine import reading, writing
from bot.storage.token_crypto import PlainTokens, TokenCipher, make_cipher

BOT_CACHE_SECONDS = 10.0
BOT_FIELDS = ("bot_token", "bot_refresh_token")
USER_FIELDS = ("user_token", "user_refresh_token")

Cipher = TokenCipher | PlainTokens
_T = TypeVar("_T", Bot, Installation)


class EncryptedSQLAlchemyStore(SQLAlchemyInstallationStore):
    """slack_sdk's SQLAlchemy store on Offhours' tables, encrypting tokens on save and decrypting them on find."""

    def __init__(self, *, client_id: str, engine: sa.Engine, cipher: Cipher) -> None:
        super().__init__(
            client_id=client_id,
            engine=engine,
            bots_table_name=schema.bots.name,
            installations_table_name=schema.installations.name,
        )
        self.cipher = cipher

    @staticmethod
    def _apply(obj: _T, fields: tuple[str, ...], convert: Callable[[str | None], str | None]) -> _T:
        obj = copy.copy(obj)
        for field in fields:
            if hasattr(obj, field):
                setattr(obj, field, convert(getattr(obj, field)))
        return obj

    def save(self, installation: Installation) -> None:
        super().save(self._apply(installation, BOT_FIELDS + USER_FIELDS, self.cipher.encrypt))

    def save_bot(self, bot: Bot) -> None:
        super().save_bot(self._apply(bot, BOT_FIELDS, self.cipher.encrypt))

    def find_bot(self, **kwargs: Any) -> Bot | None:
        bot = super().find_bot(**kwargs)
        return None if bot is None else self._apply(bot, BOT_FIELDS, self.cipher.decrypt)

    def find_installation(self, **kwargs: Any) -> Installation | None:
        installation = super().find_installation(**kwargs)
        if installation is None:
            return None
        return self._apply(installation, BOT_FIELDS + USER_FIELDS, self.cipher.decrypt)


class ExpiringInstallationStore(CacheableInstallationStore):
    """slack_sdk's cache wrapper, with each answer kept for `seconds` and safe under many request threads.

    Same keys and the same rule as the wrapper (a write through it forgets the workspace's answers), plus: a find
    that overlapped a write (or a `changing()` block) is not kept, since it may have read the row before the
    write; and an answer expires, so another process's change is seen after `seconds`. Absent answers are never
    kept: a workspace that installs a moment later is served at once. Its writers and finds are overridden, not
    extended: the wrapper checks then pops plain dicts, which races between request threads.
    """

    def __init__(
        self, installation_store: InstallationStore, *, seconds: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(installation_store)
        self.seconds = seconds
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._generation = 0  # moves at the start and end of every change: a read it moved during is not kept
        self._expires: dict[tuple[str, str], float] = {}

    @property
    def client_id(self) -> str:
        return self.underlying.client_id  # type: ignore[attr-defined]

    # --- writes: each forgets the workspace's answers ---------------------------------------------------------

    @contextmanager
    def changing(self, *, team_id: str | None) -> Iterator[None]:
        """Around any write to the token tables: cached answers about `team_id` (any enterprise) are dropped before
        and after (so nothing read while it runs is kept), and a read that began before it is not kept either."""
        with self._lock:
            self._generation += 1
            self._drop(team_id)
        try:
            yield
        finally:
            with self._lock:
                self._generation += 1
                self._drop(team_id)

    def _drop(self, team_id: str | None) -> None:
        team = team_id or ""
        for kind, cache in (("bot", self.cached_bots), ("installation", self.cached_installations)):
            for key in [k for k in cache if k.split("-")[1] == team]:  # "enterprise-team" or "enterprise-team-user"
                del cache[key]
                self._expires.pop((kind, key), None)

    def save(self, installation: Installation) -> None:
        with self.changing(team_id=installation.team_id):
            self.underlying.save(installation)

    def save_bot(self, bot: Bot) -> None:
        with self.changing(team_id=bot.team_id):
            self.underlying.save_bot(bot)

    def delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        with self.changing(team_id=team_id):
            self.underlying.delete_bot(enterprise_id=enterprise_id, team_id=team_id)

    def delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        with self.changing(team_id=team_id):
            self.underlying.delete_installation(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)

    def delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        with self.changing(team_id=team_id):
            self.underlying.delete_all(enterprise_id=enterprise_id, team_id=team_id)

    # --- reads ------------------------------------------------------------------------------------------------

    def find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        if is_enterprise_install or team_id is None:
            team_id = ""
        key = f"{enterprise_id or ''}-{team_id or ''}"
        return self._cached(
            "bot",
            self.cached_bots,
            key,
            lambda: self.underlying.find_bot(
                enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
            ),
        )

    def find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        if is_enterprise_install or team_id is None:
            team_id = ""
        key = f"{enterprise_id or ''}-{team_id or ''}-{user_id or ''}"
        return self._cached(
            "installation",
            self.cached_installations,
            key,
            lambda: self.underlying.find_installation(
                enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
                is_enterprise_install=is_enterprise_install,
            ),
        )  # fmt: skip

    def _cached(self, kind: str, cache: dict[str, _T], key: str, read: Callable[[], _T | None]) -> _T | None:
        with self._lock:
            hit = cache.get(key)
            if hit is not None and self.monotonic() < self._expires[(kind, key)]:
                return hit
            started = self._generation
        value = read()
        if value is not None:
            with self._lock:
                if self._generation == started:
                    cache[key] = value
                    self._expires[(kind, key)] = self.monotonic() + self.seconds
        return value


class TokenStore:
    """Every read of a Slack token, and every write to the token tables outside Bolt's OAuth flow."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        client_id: str,
        encryption_key: str | None = None,
        state_expiration_seconds: int = 600,
        cache_seconds: float = BOT_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.client_id = client_id
        self.cipher: Cipher = make_cipher(encryption_key)
        self.installation_store = ExpiringInstallationStore(
            EncryptedSQLAlchemyStore(client_id=client_id, engine=engine, cipher=self.cipher),
            seconds=cache_seconds,
            monotonic=monotonic,
        )
        self.oauth_state_store = SQLAlchemyOAuthStateStore(
            expiration_seconds=state_expiration_seconds, engine=engine, table_name=schema.oauth_states.name
        )

    def decrypt(self, stored: str | None) -> str | None:
        """A token column's value as Slack issued it (for dm_view, which reads USER_TOKEN in its own statement)."""
        return self.cipher.decrypt(stored)

    # --- bots: cached ------------------------------------------------------------------------------------------

    def bot(self, team_id: str, *, enterprise_id: str | None = None) -> Bot | None:
        """The workspace's latest bot installation (token, ids, scopes); asked for on every request (authorize)."""
        bot = self.installation_store.find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None and enterprise_id:  # Enterprise Grid, installed org-wide: one bot for every workspace
            store = self.installation_store
            bot = store.find_bot(enterprise_id=enterprise_id, team_id=None, is_enterprise_install=True)
        return bot

    def bot_token(self, team_id: str, *, enterprise_id: str | None = None) -> str | None:
        bot = self.bot(team_id, enterprise_id=enterprise_id)
        return bot.bot_token if bot else None

    def workspaces(self) -> list[tuple[str, str | None]]:
        """(team id, team name) of every workspace with a bot token, latest installation first (for `check`)."""
        b = schema.bots.c
        query = (
            sa.select(b.team_id, b.team_name)
            .where(b.client_id == self.client_id, b.bot_token.is_not(None))
            .order_by(b.installed_at.desc())
        )
        with reading(self.engine) as conn:
            rows = conn.execute(query).all()
        latest: dict[str, str | None] = {}
        for team_id, team_name in rows:
            latest.setdefault(team_id, team_name)
        return list(latest.items())

    # --- people's tokens: read fresh ---------------------------------------------------------------------------

    def user_token(self, team_id: str, user_id: str, *, enterprise_id: str | None = None) -> str | None:
        """The person's own token (user scopes), or None when they have not connected their DMs."""
        with reading(self.engine) as conn:
            token = conn.execute(
                user_token_query(enterprise_id is None),
                {"client_id": self.client_id, "enterprise_id": enterprise_id, "team_id": team_id, "user_id": user_id},
            ).scalar()
        return self.cipher.decrypt(token)

    def user_tokens(self, team_id: str, user_ids: Iterable[str]) -> dict[str, str]:
        """The tokens of those of `user_ids` who are connected, in one read (the reply sender's batches)."""
        with reading(self.engine) as conn:
            rows = conn.execute(
                _USER_TOKENS, {"client_id": self.client_id, "team_id": team_id, "user_ids": list(set(user_ids))}
            ).all()
        latest = dict(rows)  # ordered by installed_at: each person's latest installation wins
        return {user_id: self.cipher.decrypt(stored) or "" for user_id, stored in latest.items() if stored is not None}

    def anyone_else_connected(self, team_id: str, user_id: str) -> bool:
        """Whether someone other than `user_id` has connected here (asked for each DM channel seen for the first
        time). It stops at the first such row, where reading every connected person's id did not; when there is
        none it still reads the table's rows (no index serves the workspace's OR with `user_id !=`)."""
        i = schema.installations.c
        query = sa.select(i.id).where(in_team(team_id), i.user_token.is_not(None), i.user_id != user_id).limit(1)
        with reading(self.engine) as conn:
            return conn.execute(query).first() is not None

    def connected_user_ids(self, team_id: str) -> set[str]:
        i = schema.installations.c
        with reading(self.engine) as conn:
            rows = conn.execute(sa.select(i.user_id).where(in_team(team_id), i.user_token.is_not(None)).distinct())
            return {r[0] for r in rows}

    # --- writes outside Bolt's flow ----------------------------------------------------------------------------

    def changing(self, team_id: str) -> AbstractContextManager[None]:
        """Around a transaction that deletes or changes token rows of `team_id` (see bot/storage/forget.py)."""
        return self.installation_store.changing(team_id=team_id)

    def revoke_bot_tokens(self, team_id: str) -> None:
        """tokens_revoked for the bot: the workspace's bot rows go, and the bot token copied into installations."""
        with self.changing(team_id), writing(self.engine) as conn:
            conn.execute(schema.bots.delete().where(schema.bots.c.team_id == team_id))
            conn.execute(
                schema.installations.update().where(schema.installations.c.team_id == team_id).values(bot_token=None)
            )


def in_team(team_id: str | sa.ColumnElement) -> sa.ColumnElement[bool]:
    """Installation rows that serve workspace `team_id`: its own, or an org-wide one (Enterprise Grid).

    A workspace install on Grid has both ids; an org-wide install has no team id (slack_sdk stores None) and serves
    every workspace of the organisation. Events and commands name the workspace, seldom the organisation, and Slack
    user ids are unique across organisations, so a person's rows are found by team or org-wide install and user.
    """
    i = schema.installations.c
    return sa.or_(i.team_id == team_id, i.is_enterprise_install.is_(True))


def still_connected(conn: sa.Connection, team_id: str, user_id: str) -> bool:
    """Inside a write transaction: whether the person still has a user token here, locked against a concurrent
    forget_person until the transaction ends (PostgreSQL FOR SHARE; SQLite's writers take turns anyway), so
    what is written after a slow Slack call cannot outlive their "forget everything"."""
    return conn.execute(_still_connected_query(), {"team_id": team_id, "user_id": user_id}).first() is not None


def connected_among(conn: sa.Connection, team_id: str, user_ids: set[str]) -> set[str]:
    """`still_connected` for several people in one statement: on PostgreSQL one row locked per person, in user id
    order, as one statement per person did.

    Not a plain IN on PostgreSQL: that locked every installation row of each person, in id order, while forget
    deletes a person's rows in table order, and the two deadlocked (tests/storage/test_inbox_group_commit.py).
    """
    if len(user_ids) <= 1:
        return {user_id for user_id in user_ids if still_connected(conn, team_id, user_id)}
    query = _connected_among_query(conn.dialect.name == "postgresql")
    return set(conn.execute(query, {"team_id": team_id, "user_ids": sorted(user_ids)}).scalars())


@functools.cache
def _connected_among_query(postgres: bool) -> sa.Select:
    i = schema.installations.c
    connected = (in_team(sa.bindparam("team_id")), i.user_token.is_not(None))
    if not postgres:  # SQLite's writers take turns: nothing to lock
        among = i.user_id.in_(sa.bindparam("user_ids", expanding=True))
        return sa.select(i.user_id).where(*connected, among).distinct()
    # Each person's first row, locked person by person in the order of the (sorted) array, like still_connected
    people = (
        sa.func.unnest(sa.bindparam("user_ids", type_=postgresql.ARRAY(schema.ID)))
        .table_valued("user_id", with_ordinality="n")
        .render_derived()
    )
    first_row = (
        sa.select(i.id)
        .where(*connected, i.user_id == people.c.user_id)
        .limit(1)
        .with_for_update(read=True)
        .lateral("first_row")
    )
    return sa.select(people.c.user_id).select_from(people.join(first_row, sa.true())).order_by(people.c.n)


@functools.cache
def _still_connected_query() -> sa.Select:
    # Built once: it runs before the ack of every DM recorded, and constructing it cost more than running it.
    i = schema.installations.c
    return (
        sa.select(i.id)
        .where(in_team(sa.bindparam("team_id")), i.user_id == sa.bindparam("user_id"), i.user_token.is_not(None))
        .limit(1)
        .with_for_update(read=True)
    )


@functools.cache
def user_token_query(any_enterprise: bool) -> sa.Select:
    """A person's latest user token (still encrypted): the statement user_token runs.

    `any_enterprise`: the caller knows no organisation (a plain workspace, or Grid with only the team id known);
    otherwise the row must be of `enterprise_id`.
    """
    # Built once: constructing the statement cost more than running it.
    enterprise_id: sa.BindParameter | None = None if any_enterprise else sa.bindparam("enterprise_id")
    return latest_user_token(sa.bindparam("team_id"), sa.bindparam("user_id"), enterprise_id=enterprise_id)


def latest_user_token(
    team_id: sa.ColumnElement, user_id: sa.ColumnElement, *, enterprise_id: sa.ColumnElement | None = None
) -> sa.Select:
    """The statement of user_token_query over any expressions for the ids (dm_view embeds it over its keys'
    columns); the client id is the bound parameter "client_id". No `enterprise_id`: any organisation."""
    i = schema.installations.c
    where = [i.client_id == sa.bindparam("client_id"), in_team(team_id), i.user_id == user_id]
    if enterprise_id is not None:
        where.append(i.enterprise_id == enterprise_id)
    return sa.select(i.user_token).where(*where).order_by(i.installed_at.desc()).limit(1)


_i = schema.installations.c
_USER_TOKENS = (
    sa.select(_i.user_id, _i.user_token)
    .where(_i.client_id == sa.bindparam("client_id"), in_team(sa.bindparam("team_id")),
           _i.user_id.in_(sa.bindparam("user_ids", expanding=True)))
    .order_by(_i.installed_at)  # the latest installation of each person wins, as in user_token
)  # fmt: skip
