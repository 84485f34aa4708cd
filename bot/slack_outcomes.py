"""What a Web API call's failure says about what Slack did, and when to try again: shared by the two senders.

Kept apart from the outbox (storage) and the senders (the work): which errors mean "not done", which mean "maybe
done" (look before trying again), which are worth a retry, and how long to wait.
"""

from __future__ import annotations

import re
import urllib.error
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

# Slack's answers that mean the person's token is gone: they are disconnected, and nothing is retried.
REVOKED = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired"})

# Errors after which Slack may have carried the post out. IN_FLIGHT is written by every claim (of a reply or a
# recap): found by the next claim, it means the attempt never recorded an outcome (its process died, or lost the
# database). A network error is recorded by `request_error`: UNKNOWN_PREFIX marks one that may have come after
# Slack got the whole request. The bare names are from rows written before that prefix existed.
IN_FLIGHT = "in_flight"
# The lookup for an earlier attempt's post failed: that attempt's outcome is still unknown, so look again.
LOOKUP_FAILED = "lookup_failed"
UNKNOWN_PREFIX = "unknown:"
UNKNOWN_OUTCOME_ERRORS = frozenset({
    "timeout", "TimeoutError", "OSError", "RemoteDisconnected", "ConnectionResetError", "unexpected", IN_FLIGHT,
    LOOKUP_FAILED,
})  # fmt: skip


def may_have_posted(error: str | None) -> bool:
    """Whether an attempt that ended with `error` may have posted all the same (None: it ended without a word)."""
    return error is None or error in UNKNOWN_OUTCOME_ERRORS or error.startswith(UNKNOWN_PREFIX)


def outcome_unknown(attempts: int, last_error: str | None) -> bool:
    """An earlier attempt may have posted: it timed out, or its process died mid-send (a lost lease)."""
    return attempts > 1 and may_have_posted(last_error)


def request_error(error: OSError) -> str:
    """What to record for a Web API call that failed in the network.

    urllib wraps what fails while connecting or sending in URLError (refused, DNS, a reset mid-send): Slack never
    got the whole request, so it did nothing. Anything else (the connection dropped or was reset while the answer
    was awaited, a TLS error, a broken pipe) may have come after Slack acted on it.
    """
    if isinstance(error, urllib.error.URLError):
        return "URLError"
    return UNKNOWN_PREFIX + type(error).__name__


# Slack's docs say of these (chat.postMessage, chat.postEphemeral): "It's possible some aspect of the operation
# succeeded before the error was raised." They can come with HTTP 200 as well as with a 5xx.
MAY_HAVE_ACTED = frozenset({"internal_error", "fatal_error"})
# Transient by Slack's own description: retried later, like a 5xx. Not fatal_error ("catastrophic"): retried for
# ever, a recap would hold its messages back; refused for good, they wait for the next recap.
TRANSIENT = frozenset({"ratelimited", "service_unavailable", "request_timeout", "internal_error"})
_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")


def slack_code(error) -> str:
    """A SlackApiError's error code, or its HTTP status when Slack's answer carried none (slack_sdk puts the start
    of a proxy's HTML error page there: no use to anyone, and not for the database or the logs)."""
    code = error.response.get("error")
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else str(error.response.status_code)


def slack_retryable(status: int, code: str) -> bool:
    """Whether a Web API refusal is worth trying again later (rate limits, Slack's own trouble)."""
    return status == 429 or status >= 500 or code in TRANSIENT


def slack_error(status: int, code: str) -> str:
    """What to record for a refused post: its code, marked unknown where Slack may have carried it out.

    A 5xx says no more than "something failed somewhere" (Slack's edge may answer 502 or 504 for a post that went
    through), so after one the reply sender looks for its post before posting again.
    """
    if status >= 500 or code in MAY_HAVE_ACTED:
        return UNKNOWN_PREFIX + code
    return code


def backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s ... capped at 10 minutes."""
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), 600))


def retry_after(error: SlackApiError, default: float = 1.0) -> float:
    headers = getattr(error.response, "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(float(value), 0.0)
            except ValueError:
                return default
    return default


def sending_client(client: WebClient) -> WebClient:
    """A client without sleeping retries: a 429 or a 5xx is rescheduled in the outbox, not waited out in-thread."""
    return WebClient(base_url=client.base_url, timeout=client.timeout, retry_handlers=[])
