"""The converters of config.yaml's values: each takes what YAML gave for one key and returns the value to use, or
raises `Invalid` saying what it expected (bot/config.py adds the key's path and collects every problem)."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from bot.domain.errors import OffhoursError
from bot.domain.hours import (
    parse_duration,
    parse_hours,
    render_hours,
    resolve_holidays,
    resolve_timezone,
)
from bot.domain.templates import validate_template


class Invalid(Exception):
    """One key's value is wrong; the message is what was expected (the key path is added by the caller)."""


def got(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def closest(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {got(value)}")
    return value


def positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise Invalid(f"expected a positive number, got {got(value)}")
    return float(value)


def int_between(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Invalid(f"expected a whole number from {low} to {high}, got {got(value)}")
        return value

    return convert


def one_of(*choices: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if value not in choices or not isinstance(value, str):
            listed = ", ".join(repr(choice) for choice in choices)
            hint = closest(value, list(choices)) if isinstance(value, str) else None
            suffix = f" (did you mean {hint!r}?)" if hint else ""
            raise Invalid(f"expected one of {listed}, got {got(value)}{suffix}")
        return value

    return convert


def non_empty_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected {what}, got {got(value)}")
    return value.strip()


def hours(value: Any) -> str:
    spec = non_empty_text(value, "working hours like 'mon-fri 09:00-17:30'")
    try:
        return render_hours(parse_hours(spec))
    except OffhoursError as error:
        raise Invalid(str(error)) from None


def timezone(value: Any) -> str:
    name = non_empty_text(value, "a time zone name like 'Europe/Berlin'")
    try:
        return resolve_timezone(name)
    except OffhoursError as error:
        raise Invalid(str(error)) from None


def optional_timezone(value: Any) -> str | None:
    return None if value is None else timezone(value)


def optional_holidays(value: Any) -> str | None:
    if value is None:
        return None
    code = non_empty_text(value, "a country code like 'US' or 'DE-BY'")
    try:
        return resolve_holidays(code)
    except OffhoursError as error:
        raise Invalid(str(error)) from None


def message(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a message template (text), got {got(value)}")
    try:
        return validate_template(value)
    except OffhoursError as error:
        raise Invalid(str(error)) from None


def status_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected a status template (text), got {got(value)}")
    try:
        text = validate_template(" ".join(value.split()))
    except OffhoursError as error:
        raise Invalid(str(error)) from None
    if len(text) > 100:
        raise Invalid(f"a status holds at most 100 characters, got {len(text)}")
    return text


def status_emoji(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r":[a-z0-9_+\-']{1,98}:", value.strip()):
        raise Invalid(f"expected an emoji code like ':crescent_moon:', got {got(value)}")
    return value.strip()


def duration(value: Any) -> timedelta:
    if not isinstance(value, str):
        raise Invalid(f"expected a duration like '4h', '30m' or '1d', got {got(value)}")
    try:
        return parse_duration(value.strip())
    except OffhoursError as error:
        raise Invalid(str(error)) from None


def nudge_before(value: Any) -> timedelta | None:
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() == "off"):
        return None
    before = duration(value)
    if before <= timedelta(0):
        raise Invalid(f"expected a duration like '30m' or '1h', or 'off', got {got(value)}")
    return before


URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # how a database URL begins (bot/settings.py too)


def storage_url(value: Any) -> str:
    url = non_empty_text(value, "a database URL like 'sqlite:///offhours.db'")
    if not URL_SCHEME.match(url):
        raise Invalid(f"expected a database URL like 'sqlite:///offhours.db', got {got(value)}")
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        raise Invalid("contains a password; secrets come from the environment: DATABASE_URL")
    return url


_COMMAND = re.compile(r"^/[a-z0-9_-]{1,31}$")


def command(value: Any) -> str:
    if not isinstance(value, str) or not _COMMAND.match(value):
        raise Invalid(
            f"expected a slash command like '/hours' (a '/' then lowercase letters, digits, '-' or '_'; "
            f"at most 32 characters), got {got(value)}"
        )
    return value
