"""Forgetting, in one place: a person (`/hours forget`, a revoked token), a workspace (uninstall), and retention.

The one module that deletes from every table, on purpose: a table that holds something about a person is added to
PERSON_COLUMNS, and tests/storage/test_forget.py fails for any table of the schema left out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from bot.storage import schema
from bot.storage.engine import writing
from bot.storage.tokens import TokenStore, in_team

# Every table holding something about a person, with the columns that name them: a row naming the person in any
# of them goes. Tokens first: a writer holding still_connected()'s lock makes forget wait, then its rows go below
# (deleted last, the two took their locks in opposite orders: a deadlock on PostgreSQL). Recaps before messages, as
# every recap writer locks them (a take-over, give_up: the recap row, then its messages).
PERSON_COLUMNS: tuple[tuple[sa.Table, tuple[str, ...]], ...] = (
    (schema.installations, ("user_id",)),
    (schema.people, ("user_id",)),
    (schema.recaps, ("user_id",)),
    (schema.messages, ("recipient_id", "sender_id")),
    (schema.replies, ("recipient_id", "sender_id")),  # replies sent *to* them name them too
    (schema.dm_channels, ("user_a", "user_b")),
    (schema.profiles, ("user_id",)),
    (schema.reply_exceptions, ("user_id", "except_user_id")),  # their own list, and their place on others'
    (schema.dm_presence, ("user_id",)),
    (schema.deferred_dms, ("writer_id",)),
    (schema.mention_settings, ("user_id",)),
    (schema.channel_posts, ("sender_id",)),  # channel office hours: what they posted off hours, their reply
    (schema.channel_replies, ("sender_id",)),
    (schema.urgent_routes, ("user_id", "route_to")),  # their route, and their place as someone's backup
    (schema.urgent_notices, ("recipient_id", "sender_id", "target_id")),
    (schema.status_prefs, ("user_id",)),
    (schema.status_updates, ("user_id",)),
    (schema.nudges, ("user_id", "sender_id")),
)
# A workspace's rows: the above, and its bots (right after its installations, for the same lock order).
TEAM_TABLES: tuple[sa.Table, ...] = (
    schema.installations,
    schema.bots,
    *(table for table, _ in PERSON_COLUMNS[1:]),
    schema.channel_hours,
    schema.channel_summaries,
    schema.workspace_urls,
)


class Forget:
    def __init__(self, engine: sa.Engine, tokens: TokenStore) -> None:
        self.engine = engine
        self.tokens = tokens

    def forget_person(self, team_id: str, user_id: str) -> None:
        """Delete everything held about one person: settings, tokens, recorded messages, pending replies, caches."""
        with self.tokens.changing(team_id), writing(self.engine) as conn:
            for table, columns in PERSON_COLUMNS:
                names = sa.or_(*(table.c[column] == user_id for column in columns))
                # Their org-wide installation (Enterprise Grid) too: it is the token this workspace reads.
                team = in_team(team_id) if table is schema.installations else table.c.team_id == team_id
                conn.execute(table.delete().where(team, names))
            # A channel's summary DMed to them goes back to the channel; the channel's hours are the team's, not theirs.
            h = schema.channel_hours.c
            conn.execute(
                schema.channel_hours.update()
                .where(h.team_id == team_id, h.summary_to == user_id)
                .values(summary_to=None)
            )

    def forget_team(self, team_id: str) -> None:
        """The app was uninstalled: delete every row of that workspace, tokens included."""
        with self.tokens.changing(team_id), writing(self.engine) as conn:
            for table in TEAM_TABLES:
                conn.execute(table.delete().where(table.c.team_id == team_id))

    def purge_expired(self, *, now: datetime, days: int) -> int:
        """Retention: drop what is older than `days` and finished; never a message still waiting for a recap, nor
        a reply whose window is still open (the once-per-window rule needs it until the window ends)."""
        cutoff = now - timedelta(days=days)
        m, r, c, p = schema.messages.c, schema.replies.c, schema.recaps.c, schema.profiles.c
        with writing(self.engine) as conn:
            removed = conn.execute(
                schema.messages.delete().where(m.received_at < cutoff, m.state != "pending")
            ).rowcount
            # A message still waiting keeps its place in the recap, but not its text.
            conn.execute(schema.messages.update().where(m.received_at < cutoff, m.text.is_not(None)).values(text=None))
            removed += conn.execute(
                schema.replies.delete().where(
                    r.received_at < cutoff, r.state != "pending", sa.or_(r.window_end.is_(None), r.window_end <= now)
                )
            ).rowcount
            d = schema.dm_presence.c  # presence matters for PRESENT_FOR only: a day is plenty
            removed += conn.execute(schema.dm_presence.delete().where(d.wrote_at < now - timedelta(days=1))).rowcount
            removed += conn.execute(schema.recaps.delete().where(c.due_at < cutoff, c.state != "pending")).rowcount
            n = schema.nudges.c
            removed += conn.execute(schema.nudges.delete().where(n.received_at < cutoff, n.state != "pending")).rowcount
            removed += conn.execute(schema.profiles.delete().where(p.fetched_at < cutoff)).rowcount
            cp, cr, cs = schema.channel_posts.c, schema.channel_replies.c, schema.channel_summaries.c
            removed += conn.execute(
                schema.channel_posts.delete().where(cp.received_at < cutoff, cp.state != "pending")
            ).rowcount
            removed += conn.execute(
                schema.channel_replies.delete().where(cr.received_at < cutoff, cr.state != "pending", cr.back_at <= now)
            ).rowcount
            removed += conn.execute(
                schema.channel_summaries.delete().where(cs.due_at < cutoff, cs.state != "pending")
            ).rowcount
            u = schema.urgent_notices.c  # the notes, like recorded messages: kept while not yet settled
            removed += conn.execute(
                schema.urgent_notices.delete().where(u.created_at < cutoff, u.state != "pending")
            ).rowcount
            su = schema.status_updates.c  # finished status updates of windows long over
            removed += conn.execute(
                schema.status_updates.delete().where(su.window_end < cutoff, su.state != "pending")
            ).rowcount
        return removed
