"""The one Web API client factory, and the one place that reads a Web API failure as a delivery outcome.

Which errors mean "not done", which mean "maybe done" (look before trying again), which are worth a retry, and
how long to wait: the delivery engine (bot/workers/engine.py) asks here; the domain's delivery states say what
is recorded. Every client the app uses carries an `ApiErrorCounter`, which counts each failed call for the metrics.
"""

from __future__ import annotations

import io
import re
import urllib.error
import urllib.request
import weakref
from typing import Any, cast
from urllib.parse import urlparse

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.domain.delivery import Failure
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack.connections import ConnectionPool


def make_client(settings: Settings, *, timeout: int = 10) -> WebClient:
    """A Web API client for SLACK_API_URL that honours 429 Retry-After and retries dropped connections."""
    return PooledWebClient(
        base_url=settings.slack_api_url,
        timeout=timeout,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=2)],
    )


class PooledWebClient(WebClient):
    """slack_sdk's WebClient over kept-alive connections (bot/slack/connections.py): connections (and their TLS
    sessions) are reused between calls. urllib, which WebClient uses, opens a new TCP connection and TLS handshake
    for every call: on the delivery path that was a connect, a DNS lookup and a close per post (bench/RESULTS.md,
    eighth session).

    Failures keep urllib's meaning for `request_error`: what fails before the request is sent whole (refused, DNS,
    a connect timeout) is a URLError; a read timeout is a TimeoutError; a connection that drops after the request
    went out is a ConnectionResetError (Slack may have acted). Nothing is retried here. A kept connection is not
    reused once the server has closed it or may be about to (idle past its keep-alive): a request sent as a close
    is on its way would read as "maybe posted". An HTTP error status is raised as urllib's HTTPError, which
    WebClient reads as it always has (429 Retry-After included). With a proxy, urllib as before.
    """

    def __init__(self, *args: Any, pool: ConnectionPool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool = pool or ConnectionPool(self.ssl)

    def _perform_urllib_http_request_internal(self, url: str, req: urllib.request.Request) -> dict[str, Any]:
        if self.proxy is not None or not url.lower().startswith(("http://", "https://")):
            return super()._perform_urllib_http_request_internal(url, req)
        body = cast(bytes | None, req.data)
        resp = self.pool.post(url, body, dict(req.header_items()), timeout=self.timeout)
        if not 200 <= resp.status < 300:  # as urllib's HTTPErrorProcessor
            raise urllib.error.HTTPError(url, resp.status, resp.reason, resp.headers, io.BytesIO(resp.data))
        if resp.headers.get_content_type() == "application/gzip":
            return {"status": resp.status, "headers": resp.headers, "body": resp.data}
        text = resp.data.decode(resp.headers.get_content_charset() or "utf-8")
        return {"status": resp.status, "headers": resp.headers, "body": text}


# Slack's answers that mean the person's token is gone: they are disconnected, and nothing is retried.
REVOKED = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed", "token_expired"})


def request_error(error: OSError) -> Failure:
    """What a Web API call that failed in the network says about Slack having acted on it.

    urllib wraps what fails while connecting or sending in URLError (refused, DNS, a reset mid-send): Slack never
    got the whole request, so it did nothing. Anything else (the connection dropped or was reset while the answer
    was awaited, a TLS error, a broken pipe) may have come after Slack acted on it.
    """
    if isinstance(error, urllib.error.URLError):
        return Failure("URLError")
    if isinstance(error, TimeoutError):
        return Failure("timeout", maybe_posted=True)
    return Failure(type(error).__name__, maybe_posted=True)


# Slack's docs say of these (chat.postMessage, chat.postEphemeral): "It's possible some aspect of the operation
# succeeded before the error was raised." They can come with HTTP 200 as well as with a 5xx.
MAY_HAVE_ACTED = frozenset({"internal_error", "fatal_error"})
# Transient by Slack's own description: retried later, like a 5xx. Not fatal_error ("catastrophic"): retried for
# ever, a recap would hold its messages back; refused for good, they wait for the next recap.
TRANSIENT = frozenset({"ratelimited", "service_unavailable", "request_timeout", "internal_error"})
_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")


def slack_code(error: SlackApiError) -> str:
    """A SlackApiError's error code, or its HTTP status when Slack's answer carried none (slack_sdk puts the start
    of a proxy's HTML error page there: no use to anyone, and not for the database or the logs)."""
    code = error.response.get("error")
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else str(error.response.status_code)


def slack_retryable(status: int, code: str) -> bool:
    """Whether a Web API refusal is worth trying again later (rate limits, Slack's own trouble)."""
    return status == 429 or status >= 500 or code in TRANSIENT


def slack_error(status: int, code: str) -> Failure:
    """What a refused post says: its code, and whether Slack may have carried it out all the same.

    A 5xx says no more than "something failed somewhere" (Slack's edge may answer 502 or 504 for a post that went
    through), so after one a delivery looks for its post before posting again (unless its kind says otherwise).
    """
    return Failure(code, maybe_posted=status >= 500 or code in MAY_HAVE_ACTED)


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


# The pool of the sending clients made from a client that has none of its own (tests hand in plain WebClients):
# one per source client, so that close_connections(source) closes what they opened.
_pools: weakref.WeakKeyDictionary[WebClient, ConnectionPool] = weakref.WeakKeyDictionary()


def _pool_of(client: WebClient) -> ConnectionPool:
    if isinstance(client, PooledWebClient):
        return client.pool
    pool = _pools.get(client)
    if pool is None:
        pool = _pools[client] = ConnectionPool(client.ssl)
    return pool


def close_connections(client: WebClient) -> None:
    """Close the connections `client` and the sending clients made from it keep (at shutdown; a later call opens
    new ones)."""
    pool = client.pool if isinstance(client, PooledWebClient) else _pools.get(client)
    if pool is not None:
        pool.clear()


def sending_client(client: WebClient, *, timeout: int | None = None) -> WebClient:
    """A client without sleeping retries: a 429 or a 5xx is rescheduled in the outbox (or, before an ack, left to
    later), never waited out in-thread. `timeout` shortens `client`'s (never lengthens it).

    It keeps `client`'s error counter, so what the workers' calls meet is counted too."""
    counters: list[RetryHandler] = [h for h in client.retry_handlers if isinstance(h, ApiErrorCounter)]
    seconds = client.timeout if timeout is None else min(timeout, client.timeout)
    # Its connections are shared with `client`'s other sending clients.
    return PooledWebClient(base_url=client.base_url, timeout=seconds, retry_handlers=counters, pool=_pool_of(client))


class ApiErrorCounter(RetryHandler):
    """Counts every failed Web API attempt into the metrics; never asks for a retry itself.

    slack_sdk shows each attempt's answer (ok or not, 429, 5xx) or network error to the client's retry handlers in
    turn, before any retry: placed first, this one sees them all, whichever client made the call.
    """

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=0)
        self.metrics = metrics

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = urlparse(request.url).path.rsplit("/", 1)[-1] or "unknown"
        if response is None:
            self.metrics.api_error(method, type(error).__name__ if error is not None else "unknown")
        elif response.status_code == 429:
            self.metrics.api_error(method, "ratelimited", rate_limited=True)
        elif response.status_code >= 400:
            self.metrics.api_error(method, str(response.status_code))
        elif isinstance(response.body, dict) and response.body.get("ok") is False:
            code = response.body.get("error")
            self.metrics.api_error(method, code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else "other")
        return False

    def _can_retry(self, **_kwargs: object) -> bool:
        return False


def count_errors(client: WebClient, metrics: Metrics) -> WebClient:
    """Make `client` count its failed calls into `metrics` (once, ahead of its retry handlers)."""
    if not any(isinstance(h, ApiErrorCounter) for h in client.retry_handlers):
        client.retry_handlers.insert(0, ApiErrorCounter(metrics))
    return client


ACK_TIMEOUT_S = 2  # a Web API call before the ack must leave room in Slack's 3 seconds


def ack_client(client: WebClient) -> WebClient:
    """A client for calls before the ack: nothing sleeps on a 429's Retry-After or retries a dropped connection,
    and a short timeout; the caller defers the work instead (Slack redelivers the event)."""
    return sending_client(client, timeout=ACK_TIMEOUT_S)
