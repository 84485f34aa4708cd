"""Everything that touches the database: the only code that imports SQLAlchemy. One module owns each table.

engine.py       connections (reading/writing), make_engine, UTCDateTime, insert_ignore/upsert, InsertNew
schema.py       every table's definition (Alembic's target metadata); db.py re-exports both for older imports
people.py       people: settings rows
profiles.py     profiles: the users.info cache
dm_channels.py  dm_channels: the conversations.info cache (a DM's two members)
tokens.py       slack_installations, slack_bots, slack_oauth_states: the one installation/token store
inbox.py        after_hours_messages: recorded DMs (queues the reply in the same transaction)
replies.py      auto_replies: the outbox; recaps.py: recaps
nudges.py       nudges: one reminder per promised reply-by time
exceptions.py   reply_exceptions: people who never get an auto-reply
workspaces.py   workspace_urls: each workspace's web address (auth.test's url), for permalinks
dm_view.py      the listener's one-statement read across people, tokens and messages (per batch)
forget.py       forget_person, forget_team, purge_expired: the cascade over every table, in one place
store.py        the facade the app holds: composes the above
"""
