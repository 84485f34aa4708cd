"""The schema: one SQLAlchemy metadata for Offhours' tables and Bolt's, which Alembic's migrations follow.

Each table has one owning module in bot/storage (see the package docstring); this module only declares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.storage.engine import UTCDateTime

metadata = sa.MetaData()

# Bolt's installation and OAuth-state tables live in the same database, declared from slack_sdk's own
# definitions so Alembic manages them with ours.
installations = SQLAlchemyInstallationStore.build_installations_table(metadata, "slack_installations")
bots = SQLAlchemyInstallationStore.build_bots_table(metadata, "slack_bots")
oauth_states = SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, "slack_oauth_states")
# Room for tokens encrypted at rest (a Fernet token of a 150-character Slack token is about 290 characters).
TOKEN_COLUMNS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
for _table in (installations, bots):
    for _name in TOKEN_COLUMNS:
        if _name in _table.c:
            _table.c[_name].type = sa.String(500)

ID = sa.String(32)

people = sa.Table(
    "people",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("tz", sa.String(64)),  # None: not known yet; the config's policy decides
    sa.Column("hours", sa.String(1000)),  # canonical hours text; None: the config default
    sa.Column("message", sa.Text),  # boundary template; None: the config default
    sa.Column("reply_within_s", sa.Integer),  # None: the config default
    sa.Column("days_off", sa.Text, nullable=False, server_default=""),  # canonical, ";"-separated
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Public holidays as days off: a country/region code ("DE-BY"); "" none (chosen); None: the config default
    sa.Column("holidays", sa.String(16)),
    # The auto-reply for people of another organisation (Slack Connect); None: the config's external policy
    sa.Column("external_message", sa.Text),
)

# The people who never get an auto-reply from `user_id` (their DMs still go in the recap), at most
# MAX_REPLY_EXCEPTIONS per person (bot.people).
reply_exceptions = sa.Table(
    "reply_exceptions",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("except_user_id", ID, primary_key=True),
    sa.Index("ix_reply_exceptions_excepted", "team_id", "except_user_id"),  # forget_person of the excepted one
)

profiles = sa.Table(  # users.info cache: a person's own profile zone, read while their people.tz is None
    "profiles",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("tz", sa.String(64)),
    sa.Column("is_bot", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("fetched_at", UTCDateTime, nullable=False),
)

dm_channels = sa.Table(  # conversations.info cache: the two members of a 1:1 DM
    "dm_channels",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("user_a", ID, nullable=False),
    sa.Column("user_b", ID, nullable=False),
)

# Every after-hours DM, recorded before the ack: what the morning recap is made of.
messages = sa.Table(
    "after_hours_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("recipient_id", ID, nullable=False),
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("ts", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32), nullable=False),  # the thread root (= ts for a top-level message)
    sa.Column("sender_id", ID, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("text", sa.Text),  # only with recap.include_text
    sa.Column("due_at", UTCDateTime, nullable=False),  # when the recap holding it is due; re-evaluated
    # pending; answered (the recipient wrote in that DM); deleted; recapped; done (ticked off in the recap)
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("recap_id", sa.Integer),
    # Where it reached the person: "dm", "mention" (a channel mention) or "mpim" (a group DM); the recap's sections
    sa.Column("source", sa.String(8), nullable=False, server_default="dm"),
    sa.UniqueConstraint("team_id", "recipient_id", "channel_id", "ts", name="uq_message_once"),
    sa.Index("ix_messages_due", "state", "due_at"),
    sa.Index("ix_messages_channel", "team_id", "recipient_id", "channel_id", "state"),
)

# The auto-reply outbox. The unique key is RFC 3834's once-per-sender rule, enforced by the database.
replies = sa.Table(
    "auto_replies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("recipient_id", ID, nullable=False),
    sa.Column("sender_id", ID, nullable=False),
    sa.Column("window_key", sa.String(40), nullable=False),
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("message_ts", sa.String(32), nullable=False),
    sa.Column("thread_ts", sa.String(32), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),  # pending|sent|failed|expired
    # A DeliveryState (bot/domain/delivery.py); `state` is its lifecycle (every open delivery state is "pending").
    sa.Column("delivery_state", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("reply_ts", sa.String(32)),
    sa.Column("last_error", sa.String(200)),  # the last failure's code, for people and logs
    # The off-window (or day) the reply answered, as it was when queued: a later DM from the same sender whose
    # window overlaps it gets no second reply, and retention keeps the row until the window has ended.
    sa.Column("window_start", UTCDateTime),
    sa.Column("window_end", UTCDateTime),
    # To someone of another organisation (Slack Connect): composed from the person's external message
    sa.Column("external", sa.Boolean, nullable=False, server_default=sa.false()),
    # Shown to the sender only (chat.postEphemeral): a reply to a channel mention or a group DM; never looked up
    sa.Column("ephemeral", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("team_id", "recipient_id", "sender_id", "window_key", name="uq_reply_once_per_window"),
    sa.Index("ix_replies_due", "state", "next_attempt_at"),
    sa.Index("ix_replies_sender_window", "team_id", "recipient_id", "sender_id"),
)

# When a person last wrote in a DM (seen through their own token): for a while they count as present there, and
# the other member gets no auto-reply from them (bot.domain.autoreply.PRESENT_FOR).
dm_presence = sa.Table(
    "dm_presence",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("wrote_at", UTCDateTime, nullable=False),
)

# DMs the connected person wrote whose other member conversations.info could not tell before the ack (a 429, a 5xx,
# the network): kept until a worker learns that member and records the DM (bot/storage/deferred_dms.py).
deferred_dms = sa.Table(
    "deferred_dms",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("ts", sa.String(32), primary_key=True),
    sa.Column("thread_ts", sa.String(32), nullable=True),
    sa.Column("writer_id", ID, nullable=False),
    sa.Column("text", sa.Text, nullable=True),  # only when recaps include text, like messages.text
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Index("ix_deferred_dms_due", "next_attempt_at"),
)

recaps = sa.Table(
    "recaps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    # 0 for a window's recap; 1, 2... for follow-ups carrying messages recorded after it was sent.
    sa.Column("seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("window_start", UTCDateTime),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),  # pending|sent|empty|failed
    sa.Column("delivery_state", sa.String(16), nullable=False, server_default="queued"),  # as for auto_replies
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("channel_id", ID),
    sa.Column("message_ts", sa.String(32)),
    sa.Column("last_error", sa.String(200)),
    sa.UniqueConstraint("team_id", "user_id", "due_at", "seq", name="uq_recap_per_window"),
    sa.Index("ix_recaps_due", "state", "next_attempt_at"),
)

# Whether a person wants channel mentions and group DMs answered (/hours mentions on|off); no row: the config default.
mention_settings = sa.Table(
    "mention_settings",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Channel office hours (issue 25; bot/storage/channel_hours.py owns these four): a channel's settings, the
# top-level messages that came while its team was off (what the summary is made of), the one threaded reply per
# sender and off window (the unique key), and the one summary per off window.
channel_hours = sa.Table(
    "channel_hours",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("hours", sa.String(1000), nullable=False),  # canonical hours text
    sa.Column("tz", sa.String(64), nullable=False),
    sa.Column("days_off", sa.Text, nullable=False, server_default=""),
    sa.Column("holidays", sa.String(16)),
    sa.Column("message", sa.Text),  # None: the default
    sa.Column("summary_to", ID),  # a person the summary is DMed to; None: posted in the channel
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
channel_posts = sa.Table(
    "channel_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("ts", sa.String(32), nullable=False),
    sa.Column("sender_id", ID, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),  # the start of the channel's next hours: its summary's
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),  # pending|answered|summarised
    sa.Column("summary_id", sa.Integer),
    sa.UniqueConstraint("team_id", "channel_id", "ts", name="uq_channel_post_once"),
    sa.Index("ix_channel_posts_due", "state", "due_at"),
)
channel_replies = sa.Table(
    "channel_replies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("sender_id", ID, nullable=False),
    sa.Column("window_key", sa.String(40), nullable=False),
    sa.Column("message_ts", sa.String(32), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("back_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("delivery_state", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("posted_ts", sa.String(32)),
    sa.Column("last_error", sa.String(200)),
    sa.UniqueConstraint("team_id", "channel_id", "sender_id", "window_key", name="uq_channel_reply_once"),
    sa.Index("ix_channel_replies_due", "state", "next_attempt_at"),
)
channel_summaries = sa.Table(
    "channel_summaries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("delivery_state", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("posted_ts", sa.String(32)),
    sa.Column("last_error", sa.String(200)),
    sa.UniqueConstraint("team_id", "channel_id", "due_at", name="uq_channel_summary_once"),
    sa.Index("ix_channel_summaries_due", "state", "next_attempt_at"),
)
