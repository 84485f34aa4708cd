"""Logging set-up: readable logfmt lines by default, one JSON object per line with OFFHOURS_LOG_FORMAT=json.

Either way a line carries the time, level, logger and message; the message's own key=value fields (outcome=,
error=, latency_ms=...) are fields of the JSON object too. Neither format adds anything the message does not
hold, so what keeps tokens and text out of the logs (they are never put in a message) holds for both.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

# logfmt: every field is key=value (the time too, in ISO 8601), so a log platform parses lines without a pattern.
LOG_FORMAT = "time=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
FORMATS = ("logfmt", "json")
# Bolt and slack_sdk log request and response bodies (tokens, message text) at DEBUG: keep them quieter.
NOISY = ("slack_bolt", "slack_sdk", "bot.bolt", "waitress.queue", "apscheduler", "alembic")

_FIELD = re.compile(r'(?:^|\s)([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|\S*)')
_RESERVED = frozenset({"time", "level", "logger", "message", "exception"})


def logfmt_fields(message: str) -> dict[str, str]:
    """The key=value fields of a log message, in order (a quoted value loses its quotes)."""
    fields: dict[str, str] = {}
    for key, value in _FIELD.findall(message):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"')
        fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the message's key=value fields, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        for key, value in logfmt_fields(message).items():
            line[f"field_{key}" if key in _RESERVED else key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else logging.Formatter(LOG_FORMAT, datefmt=LOG_DATE_FORMAT)


def configure_logging(level: int = logging.INFO, *, environ: Mapping[str, str] = os.environ) -> None:
    """Log to stderr in the format OFFHOURS_LOG_FORMAT names (logfmt, the default, or json)."""
    kind = (environ.get("OFFHOURS_LOG_FORMAT") or "logfmt").strip().lower()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(kind if kind in FORMATS else "logfmt"))
    logging.basicConfig(level=level, handlers=[handler])
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if kind not in FORMATS:
        logging.getLogger("bot").warning("log format unknown value=%s expected=%s", kind, "|".join(FORMATS))
