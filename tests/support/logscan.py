"""Every log record of the whole suite, checked after each test for what must never be logged: Slack tokens, the
app's secrets, OAuth codes, and the text of any message a test sent. Registered in tests/conftest.py.

The loggers are set as production sets them (bot.logs: INFO, the chatty libraries at WARNING), so what is checked
is what an operator's log would hold. A leak fails the test it happened in, at teardown.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator

import pytest

from bot.logs import NOISY, formatter
from tests.support.slackhttp import SIGNING_SECRET

TOKEN = re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]+")
SECRETS = (SIGNING_SECRET, "client-secret")
MIN_WATCHED = 6  # shorter strings ("hello", "hi") would turn up in innocent lines

_watched: set[str] = set()
_lock = threading.Lock()


def watch(value: object) -> None:
    """A value that must never appear in a log line: a message text a test sends, an OAuth code."""
    if isinstance(value, str) and len(value.strip()) >= MIN_WATCHED:
        with _lock:
            _watched.add(value.strip())


def leaks(lines: Iterable[str]) -> list[str]:
    """What in `lines` must not be there, each finding masked (the report must not leak it again)."""
    with _lock:
        watched = sorted(_watched)
    found = []
    for line in lines:
        for match in TOKEN.finditer(line):
            found.append(f"a token ({match.group()[:5]}…) in {_excerpt(line, match.group())}")
        for secret in SECRETS:
            if secret in line:
                found.append(f"a secret in {_excerpt(line, secret)}")
        for value in watched:
            if value in line:
                found.append(f"watched text or code ({value[:4]}…) in {_excerpt(line, value)}")
    return found


def _excerpt(line: str, secret: str) -> str:
    return repr(line.replace(secret, "<…>")[:240])


class _Collector(logging.Handler):
    """Keeps every record as production would print it (logfmt, with any traceback), until a test's end."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.format_as = formatter("logfmt")
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format_as.format(record)
        except Exception:  # a record that cannot be formatted is still scanned for what it holds
            line = f"{record.msg!r} {record.args!r}"
        self.lines.append(line)

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


_collector = _Collector()


def pytest_configure(config: pytest.Config) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    root.addHandler(_collector)


def pytest_unconfigure(config: pytest.Config) -> None:
    logging.getLogger().removeHandler(_collector)


def collected() -> int:
    """How many lines are waiting to be checked (for the test that the scan is on)."""
    return len(_collector.lines)


@pytest.fixture(autouse=True)
def _no_secrets_in_the_logs() -> Iterator[None]:
    yield
    found = leaks(_collector.take())
    if found:
        pytest.fail("logged what must never be logged:\n  " + "\n  ".join(found[:10]), pytrace=False)
