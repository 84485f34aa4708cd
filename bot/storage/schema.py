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

# A person's installation rows (every token read: before each DM's ack, and per batch of replies). slack_sdk's own
# index begins with client_id and enterprise_id, so a read by team (or org-wide install) and user scanned every
# row of the app: the whole workspace, per DM.
sa.Index("ix_installations_user", installations.c.user_id, installations.c.client_id, installations.c.installed_at)

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
    # How early before an auto-reply's reply-by time the person is nudged, in seconds; 0 off; None: the config's
    sa.Column("nudge_before_s", sa.Integer),
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
    sa.Index("ix_replies_due", "state", "next_attempt_at", "id"),
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
    sa.Index("ix_recaps_due", "state", "next_attempt_at", "id"),
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

# A workspace's web address, from auth.test (bot/storage/workspaces.py): recap permalinks are built from it instead
# of one chat.getPermalink per message.
workspace_urls = sa.Table(
    "workspace_urls",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("url", sa.String(255), nullable=False),
    sa.Column("learned_at", UTCDateTime, nullable=False),
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
    sa.Index("ix_channel_replies_due", "state", "next_attempt_at", "id"),
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
    sa.Index("ix_channel_summaries_due", "state", "next_attempt_at", "id"),
)

# Where a person's "It's urgent" notes go (issue 19): a backup's user id, or "me" (the person, from the app).
# No row: urgent notes are off (the default).
urgent_routes = sa.Table(
    "urgent_routes",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("route_to", ID, nullable=False),  # a user id, or "me"
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_urgent_routes_to", "team_id", "route_to"),  # forget_person of a backup
)

# The urgent-notice outbox: a sender's note, recorded before the modal's ack, delivered once by the engine. The
# unique key is "one urgent notice per sender per off-window" (the auto-reply's window), kept by the database.
urgent_notices = sa.Table(
    "urgent_notices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("recipient_id", ID, nullable=False),  # the person who is off
    sa.Column("sender_id", ID, nullable=False),
    sa.Column("target_id", ID, nullable=False),  # who gets the notice: the backup, or the person themselves
    sa.Column("window_key", sa.String(40), nullable=False),
    sa.Column("reply_id", sa.Integer, nullable=False),  # the auto-reply whose button was used
    sa.Column("channel_id", ID, nullable=False),  # the original DM
    sa.Column("message_ts", sa.String(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),  # pending|sent|failed|expired
    sa.Column("delivery_state", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("notice_channel", ID),
    sa.Column("notice_ts", sa.String(32)),
    sa.Column("last_error", sa.String(200)),
    sa.UniqueConstraint("team_id", "recipient_id", "sender_id", "window_key", name="uq_urgent_once_per_window"),
    sa.Index("ix_urgent_due", "state", "next_attempt_at", "id"),
)

# Status sync: what each person chose (bot/domain/status.py StatusChoice); no row: the config's defaults.
status_prefs = sa.Table(
    "status_prefs",
    metadata,
    sa.Column("team_id", ID, primary_key=True),
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("enabled", sa.Boolean),  # None: the config's status.enabled
    sa.Column("text", sa.String(400)),  # the status template; None: the config's
    sa.Column("emoji", sa.String(100)),
    sa.Column("replace", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("dnd", sa.Boolean, nullable=False, server_default=sa.false()),  # snooze notifications while off
)

# Status updates, a kind of delivery (bot/workers/status.py): setting Offhours' status for one off window (action
# "set", seq 0; a later "set" follows a change of text or emoji), clearing it ("clear") or putting the person's own
# status back ("restore"). Unique per person, window (its end) and seq: recorded once across processes.
status_updates = sa.Table(
    "status_updates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("what", sa.String(8), nullable=False, server_default="status"),  # status | dnd (snoozed notifications)
    sa.Column("action", sa.String(16), nullable=False),  # set | clear | restore; snooze | unsnooze
    sa.Column("text", sa.String(400)),  # what a "set" writes
    sa.Column("emoji", sa.String(100)),
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),  # pending|sent|failed|expired
    sa.Column("delivery_state", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.String(200)),
    # Once sent: whether Offhours' status is now on the profile ("set" only), and what was done: set, own (the
    # person's own status was left alone), cleared, restored, left (not Offhours' any more: left alone).
    sa.Column("applied", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("result", sa.String(16)),
    # The person's own status that a "set" replaced (status replace), to put back at the window's end.
    sa.Column("saved_text", sa.String(400)),
    sa.Column("saved_emoji", sa.String(100)),
    sa.Column("saved_expiration", sa.Integer),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("team_id", "user_id", "what", "window_end", "seq", name="uq_status_update_once"),
    sa.Index("ix_status_updates_due", "state", "next_attempt_at", "id"),
    sa.Index("ix_status_updates_person", "team_id", "user_id"),
)

# One reminder per promise an auto-reply made (its reply-by time), unique per the DM it answered: planned from the
# sent reply, due `nudge.before` of working time ahead, sent once by the delivery engine (bot/workers/nudges.py).
nudges = sa.Table(
    "nudges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("team_id", ID, nullable=False),
    sa.Column("user_id", ID, nullable=False),  # the person who made the promise (the auto-reply's recipient)
    sa.Column("sender_id", ID, nullable=False),  # who is waiting
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("message_ts", sa.String(32), nullable=False),  # the DM the auto-reply answered
    sa.Column("thread_ts", sa.String(32), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("external", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("promised_at", UTCDateTime, nullable=False),  # the reply-by time, as last computed
    sa.Column("planned_at", UTCDateTime, nullable=False),  # when the due time was last computed (vs people.updated_at)
    sa.Column("snoozed", sa.Boolean, nullable=False, server_default=sa.false()),
    # The person wrote in that DM after it came (seen through their token): nothing to remind them of.
    sa.Column("answered_at", UTCDateTime),
    # pending|sent|failed|expired|done, and a DeliveryState as for auto_replies
    sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("delivery_state", sa.String(16), nullable=False, server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("posted_channel", ID),
    sa.Column("posted_ts", sa.String(32)),
    sa.Column("last_error", sa.String(200)),
    sa.UniqueConstraint("team_id", "user_id", "channel_id", "message_ts", name="uq_nudge_per_promise"),
    sa.Index("ix_nudges_due", "state", "next_attempt_at", "id"),
    sa.Index("ix_nudges_channel", "team_id", "user_id", "channel_id", "state"),
)
