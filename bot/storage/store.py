"""The facade the app holds: one Store per process, composing the modules that own the tables.

Correctness lives in the database, not in memory: the unique keys in bot/storage/schema.py decide "record once" and
"reply once"; claims with a lease decide which process sends a pending reply or recap. The methods below are the
interface listeners and workers use; each delegates to its owner (`store.tokens`, `store.people`, ...), which new
code may use directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from slack_sdk.oauth.installation_store import Bot

from bot.domain.preferences import PersonRow
from bot.storage import migrate
from bot.storage.channel_hours import ChannelHoursStore
from bot.storage.deferred_dms import DeferredDms
from bot.storage.dm_channels import DmChannels
from bot.storage.dm_view import DmKey, DmView, DmViews
from bot.storage.engine import make_engine, reading
from bot.storage.exceptions import ReplyExceptions
from bot.storage.forget import Forget
from bot.storage.inbox import Inbox
from bot.storage.mentions import Mentions
from bot.storage.nudges import Nudges
from bot.storage.people import People
from bot.storage.profiles import Profiles
from bot.storage.recaps import RecapStore
from bot.storage.replies import Replies
from bot.storage.status import StatusStore
from bot.storage.tokens import BOT_CACHE_SECONDS, TokenStore, still_connected
from bot.storage.urgent import UrgentStore
from bot.storage.workspaces import WorkspaceUrls

__all__ = ["DmView", "Store"]


class Store:
    """The database behind Offhours. One per process; thread-safe (a connection per call)."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str = "offhours",
        encryption_key: str | None = None,
        state_expiration_seconds: int = 600,
        bot_cache_seconds: float = BOT_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.engine = make_engine(url)
        # Called after every forget_person (revoked tokens included) and forget_team, (team, user or ""): in-memory
        # views of who is connected (bot/mentions.py) read the database again rather than serve the forgotten.
        self.on_forget: list[Callable[[str, str], None]] = []
        self.client_id = client_id
        self.tokens = TokenStore(
            self.engine,
            client_id=client_id,
            encryption_key=encryption_key,
            state_expiration_seconds=state_expiration_seconds,
            cache_seconds=bot_cache_seconds,
            monotonic=monotonic,
        )
        self.installation_store = self.tokens.installation_store  # Bolt's OAuth flow saves through it
        self.oauth_state_store = self.tokens.oauth_state_store
        self.people = People(self.engine)
        self.profiles = Profiles(self.engine)
        self.dm_channels = DmChannels(self.engine)
        self.deferred_dms = DeferredDms(self.engine)
        self.replies = Replies(self.engine)
        self.inbox = Inbox(self.engine, self.replies)
        self.recaps = RecapStore(self.engine, self.inbox)
        self.exceptions = ReplyExceptions(self.engine)
        self.forget = Forget(self.engine, self.tokens)
        self.mentions = Mentions(self.engine, client_id=client_id)
        self.channel_hours = ChannelHoursStore(self.engine)
        self.urgent = UrgentStore(self.engine)
        self.status = StatusStore(self.engine, client_id=client_id)
        self.nudges = Nudges(self.engine)
        self.workspaces = WorkspaceUrls(self.engine)
        self.dm_views = DmViews(self.engine, self.tokens)

    # --- the database ------------------------------------------------------------------------------------------

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def schema_revision(self) -> str | None:
        """The revision the database is at (None: not migrated); raises migrate.DatabaseUnreachable."""
        return migrate.current_revision(self.engine)

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with reading(self.engine) as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self.engine.dispose()

    # --- people ------------------------------------------------------------------------------------------------

    def get_person(self, team_id: str, user_id: str) -> PersonRow | None:
        return self.people.get(team_id, user_id)

    def people_with_ids(self, team_id: str, user_ids: Iterable[str]) -> dict[str, PersonRow]:
        return self.people.with_ids(team_id, user_ids)

    def save_person(self, team_id: str, user_id: str, *, now: datetime, **fields: Any) -> PersonRow:
        return self.people.save(team_id, user_id, now=now, **fields)

    def fill_person_tz(
        self, team_id: str, user_id: str, tz: str | None, *, now: datetime, create: bool
    ) -> tuple[PersonRow | None, bool]:
        return self.people.fill_tz(team_id, user_id, tz, now=now, create=create)

    still_connected = staticmethod(still_connected)

    def dm_view(
        self, team_id: str, channel_id: str, *, recipient_id: str | None, sender_id: str | None,
        excepted_sender: str | None = None,
    ) -> DmView:  # fmt: skip
        """Everything the message listener reads, in one statement (it runs before the ack, for every DM; concurrent
        requests' views are read in one statement together: bot/storage/dm_view.py)."""
        return self.dm_views.read(DmKey(team_id, channel_id, recipient_id, sender_id, excepted_sender))

    # --- tokens ------------------------------------------------------------------------------------------------

    def user_token(self, team_id: str, user_id: str, *, enterprise_id: str | None = None) -> str | None:
        return self.tokens.user_token(team_id, user_id, enterprise_id=enterprise_id)

    def user_tokens(self, team_id: str, user_ids: Iterable[str]) -> dict[str, str]:
        return self.tokens.user_tokens(team_id, user_ids)

    def bot(self, team_id: str, *, enterprise_id: str | None = None) -> Bot | None:
        return self.tokens.bot(team_id, enterprise_id=enterprise_id)

    def bot_token(self, team_id: str, *, enterprise_id: str | None = None) -> str | None:
        return self.tokens.bot_token(team_id, enterprise_id=enterprise_id)

    def connected_user_ids(self, team_id: str) -> set[str]:
        return self.tokens.connected_user_ids(team_id)

    def anyone_else_connected(self, team_id: str, user_id: str) -> bool:
        return self.tokens.anyone_else_connected(team_id, user_id)

    def revoke_bot_tokens(self, team_id: str) -> None:
        self.tokens.revoke_bot_tokens(team_id)

    def revoke_user_tokens(self, team_id: str, user_ids: Iterable[str]) -> None:
        """tokens_revoked: drop the tokens and the person's data (they disconnected)."""
        for user_id in user_ids:
            self.forget_person(team_id, user_id)

    # --- forgetting --------------------------------------------------------------------------------------------

    def forget_person(self, team_id: str, user_id: str) -> None:
        self.forget.forget_person(team_id, user_id)
        self._forgotten(team_id, user_id)

    def forget_team(self, team_id: str) -> None:
        self.forget.forget_team(team_id)
        self._forgotten(team_id, "")

    def _forgotten(self, team_id: str, user_id: str) -> None:
        for callback in self.on_forget:
            callback(team_id, user_id)

    def purge_expired(self, *, now: datetime, days: int) -> int:
        return self.forget.purge_expired(now=now, days=days)
