"""Reading Slack payloads type-safely: every value a listener takes from a request body comes through here.

A request is signed, but its JSON can still hold anything where Slack sends a string or an object (a forged
payload, a Slack change, a client bug). Each helper answers the type the caller expects, or an empty/None value
that the caller treats like a field Slack left out, so a malformed payload is refused or ignored, never a 500:

- `text`/`ident`/`ts` give a str ("" when absent or of another type); `ident` and `ts` also refuse values no
  Slack id or timestamp can be (too long for the id columns, not the id/timestamp alphabet).
- `obj`/`objects` give a dict / a list of dicts.
- `clean` replaces lone UTF-16 surrogates (valid in JSON, not in UTF-8: no database can store them) by U+FFFD.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ID = 32  # the id columns' width (bot/storage/schema.py ID); Slack's ids are far shorter
_ID = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
_TS = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,9})?")  # Slack's "1772593200.000100"
_SURROGATE = re.compile("[\ud800-\udfff]")


def obj(container: Any, key: str) -> dict:
    """`container[key]` when both are objects, else {}."""
    value = container.get(key) if isinstance(container, dict) else None
    return value if isinstance(value, dict) else {}


def objects(container: Any, key: str) -> list[dict]:
    """The objects of the list `container[key]` (anything else in it skipped); [] when it is not a list."""
    value = container.get(key) if isinstance(container, dict) else None
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def clean(value: str) -> str:
    """The text with any lone surrogate replaced by U+FFFD, so it can be encoded as UTF-8."""
    return _SURROGATE.sub("\ufffd", value)


def text(container: Any, key: str) -> str:
    """`container[key]` when it is a string (lone surrogates replaced), else ""."""
    value = container.get(key) if isinstance(container, dict) else None
    return clean(value) if isinstance(value, str) else ""


def optional_text(container: Any, key: str) -> str | None:
    """`container[key]` when it is a non-empty string, else None (absent, null, or of another type)."""
    return text(container, key) or None


def ident(container: Any, key: str) -> str:
    """A Slack id (team, user, channel, app...) at `container[key]`, or "" when absent or no id can look like it."""
    value = text(container, key)
    return value if _ID.fullmatch(value) else ""


def ts(container: Any, key: str) -> str:
    """A Slack message timestamp at `container[key]` ("1772593200.000100"), or "" when it is not one."""
    value = text(container, key)
    return value if _TS.fullmatch(value) else ""


def is_id(value: Any) -> bool:
    """True for a string that can be a Slack id."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


# Keys Bolt reads as objects (or, for some payloads, as ids): anything else there makes it crash.
_OBJECT_OR_ID_KEYS = ("team", "user", "channel", "enterprise", "view", "container", "message", "item")
# Keys Bolt's listener matchers compare as strings (`_matches(constraint, value)` runs a regex or ==).
_STRING_KEYS = ("type", "callback_id", "action_id", "block_id", "command")


def bolt_can_read(payload: Any) -> bool:
    """Whether a parsed request body has the shape Bolt's own parsing and matching assume.

    Bolt reads `body["event"]`, `body["actions"][0]["action_id"]`, `body["view"]["callback_id"]` and the like
    without checking their types; a payload that breaks those assumptions crashes it into a 500 (and its error
    handler crashes the same way), so such a payload is refused before Bolt sees it.
    """
    if not isinstance(payload, dict):
        return False
    event = payload.get("event")
    if event is not None and not isinstance(event, dict):
        return False
    for key in ("authorizations", "actions"):
        items = payload.get(key)
        if items is not None and not (isinstance(items, list) and all(isinstance(a, dict) for a in items)):
            return False
    if payload.get("type") == "block_actions":
        # Bolt takes the first action of every block_actions payload and matches on its action_id.
        actions = payload.get("actions") or []
        if not actions or not all(isinstance(a.get("action_id"), str) for a in actions):
            return False
    view = payload.get("view")
    parts = [payload, event or {}, *(payload.get("actions") or []), view if isinstance(view, dict) else {}]
    for part in parts:
        for key in _OBJECT_OR_ID_KEYS:
            if part.get(key) is not None and not isinstance(part[key], dict | str):
                return False
        for key in _STRING_KEYS:
            if part.get(key) is not None and not isinstance(part[key], str):
                return False
    return True
