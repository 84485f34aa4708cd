"""The composition root: builds the store, the services and the Bolt app once, and owns every thread and server.

A process runs a choice of parts (`COMMANDS`: `python -m bot` runs them all, `web` and `scheduler` a few):

    http         waitress on OFFHOURS_HOST:PORT (Slack's requests, OAuth pages, /healthz)
    socket_mode  the Socket Mode connection, when SLACK_APP_TOKEN is set
    replies      the reply sender's thread (posts queued auto-replies)
    scheduler    APScheduler: recaps, the pending-replies safety net, retention
    home_refresh the Home refresher's thread
    probes       /healthz, /readyz and /metrics on METRICS_PORT, for a process without `http` (the scheduler)

There is exactly one ReplySender per process: the reply thread and the scheduler's reply job both use it, so one
stop() hands back everything it claimed and its lookups keep one spacing. `stop()` undoes `start()` in an order
that loses nothing: first no new requests (in-flight ones finish and are answered), then the reply sender hands its
claims back as not posted, then the scheduler's jobs end, then the Home refresher, then the database.

Start-up problems (a database that does not answer, a URL without a driver, an address it cannot listen on) are
ConfigErrors whose message names the problem: `python -m bot` prints it and exits 2.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient

from bot.config import Config, load_config
from bot.domain.errors import ConfigError
from bot.services import Services, build_services, utc_now
from bot.settings import Settings, load_settings, settings_database_url
from bot.slack.client import close_connections
from bot.storage.opening import open_store

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from waitress.server import BaseWSGIServer

    from bot.slack.app import OffhoursApp
    from bot.storage.store import Store
    from bot.workers.channel_hours import ChannelReplySender
    from bot.workers.replies import ReplySender
    from bot.workers.urgent import UrgentSender

log = logging.getLogger("bot.runtime")

PARTS = frozenset({"http", "socket_mode", "replies", "scheduler", "home_refresh", "probes"})
COMMANDS: dict[str, frozenset[str]] = {
    "run": PARTS - {"probes"},  # its HTTP port serves the probes and the metrics
    "web": frozenset({"http", "socket_mode", "replies", "home_refresh"}),
    "scheduler": frozenset({"scheduler", "probes"}),
}
_LISTENING = frozenset({"http", "socket_mode"})  # parts that receive Slack's requests: they need the Bolt app

HTTP_DRAIN_SECONDS = 5.0  # requests in flight at stop finish within this (Slack wants its answer within 3 s)
_FLUSH_SECONDS = 2.0  # then answers still being written get this long to reach the client


# --- the environment and the database -------------------------------------------------------------------------


def load_environment(environ: Mapping[str, str] = os.environ) -> tuple[Settings, Config]:
    """The settings (environment) and config.yaml: a mistake in either is reported before anything is built."""
    settings = load_settings(environ)
    return settings, load_config(settings.config_path, environ=environ)


def configured_store(settings: Settings, config: Config) -> Store:
    """The store the settings and config name (DATABASE_URL, else storage.url), opened and migrated."""
    url, source = settings_database_url(settings, config)
    return open_store(url, source=source, client_id=settings.client_id, encryption_key=settings.encryption_key)


# --- the runtime ------------------------------------------------------------------------------------------------


class Runtime:
    """One process's parts, built once; start() starts them, stop() stops them (once, in a safe order)."""

    def __init__(
        self,
        parts: Collection[str],
        *,
        settings: Settings,
        config: Config,
        store: Store | None = None,
        client: WebClient | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        unknown = set(parts) - PARTS
        if unknown:
            raise ValueError(f"unknown runtime parts: {', '.join(sorted(unknown))}")
        self.parts = frozenset(parts)
        self.settings = settings
        self.config = config
        self._owns_store = store is None
        store = store if store is not None else configured_store(settings, config)
        self.store = store
        self.app: OffhoursApp | None = None
        try:
            if self.parts & _LISTENING:
                from bot.slack.app import create_app

                self.app = create_app(config, store, settings=settings, client=client, clock=clock)
                self.services: Services = self.app.services
            else:
                self.services = build_services(config, store, settings=settings, client=client, clock=clock)
        except BaseException:
            if self._owns_store:
                store.close()
            raise
        self.replies: ReplySender | None = None
        if self.parts & {"replies", "scheduler"}:
            from bot.workers.replies import ReplySender

            self.replies = ReplySender(self.services)
        self.channel_replies: ChannelReplySender | None = None
        if "replies" in self.parts:
            from bot.workers.channel_hours import ChannelReplySender

            self.channel_replies = ChannelReplySender(self.services)  # channel office hours (issue 25)
        self.urgent: UrgentSender | None = None
        if "replies" in self.parts:  # urgent notes (issue 19) go out from the thread that posts queued deliveries
            from bot.workers.urgent import UrgentSender

            self.urgent = UrgentSender(self.services)
        self.server: BaseWSGIServer | None = None
        self.socket_mode: SocketModeHandler | None = None
        self.scheduler: BackgroundScheduler | None = None
        self._http_thread: threading.Thread | None = None
        self._home_started = False
        self._stop_probes: Callable[[], None] | None = None
        self._replies_started = False
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self.stop_requested = threading.Event()

    # --- start --------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the chosen parts; if one cannot start, stop what did and raise (a ConfigError for the operator)."""
        with self._lock:
            if self._started:
                raise RuntimeError("a runtime starts once")
            self._started = True
        try:
            self._start_parts()
        except BaseException:
            self.stop()
            raise
        log.info(
            "runtime started parts=%s reply_workers=%d", ",".join(sorted(self.running_parts())), _live_reply_senders()
        )

    def _start_parts(self) -> None:
        settings, app = self.settings, self.app
        if "http" in self.parts and app is not None:  # the app is built for every listening part
            # Listening first: an address this machine does not have stops start-up before any thread is running.
            self.server = _listen(app, host=settings.host, port=settings.port)
        if "socket_mode" in self.parts and app is not None and settings.app_token:
            # Connected before any worker starts, so that a token Slack refuses stops start-up with its message.
            from bot.slack.socket_mode import start_socket_mode

            self.socket_mode = start_socket_mode(app, app_token=settings.app_token)
        if "replies" in self.parts and self.replies is not None:
            self.replies.start()
            self._replies_started = True
            if self.channel_replies is not None:
                self.channel_replies.start()
        if self.urgent is not None:
            self.urgent.start()
        if "home_refresh" in self.parts:
            self.services.home_refresh.start()
            self._home_started = True
        if "scheduler" in self.parts and self.replies is not None:
            from bot.workers.scheduler import start_scheduler

            self.scheduler = start_scheduler(self.services, replies=self.replies)
        if "probes" in self.parts and settings.metrics_port and self.server is None:
            from bot.slack.web import serve_ops

            self._stop_probes = serve_ops(self.services, host=settings.host, port=settings.metrics_port)
        if self.server is not None:
            self._http_thread = threading.Thread(target=self._serve, name="http", daemon=True)
            self._http_thread.start()
            log.info(
                "serving host=%s port=%d scheduler=%s socket_mode=%s",
                settings.host, self.port, self.scheduler is not None, self.socket_mode is not None,
            )  # fmt: skip

    def running_parts(self) -> set[str]:
        running = set()
        if self._http_thread is not None:
            running.add("http")
        if self.socket_mode is not None:
            running.add("socket_mode")
        if self._replies_started:
            running.add("replies")
        if self.scheduler is not None:
            running.add("scheduler")
        if self._home_started:
            running.add("home_refresh")
        if self._stop_probes is not None:
            running.add("probes")
        return running

    @property
    def port(self) -> int:
        """The port HTTP listens on (the one the OS chose when settings.port is 0)."""
        if self.server is None:
            return self.settings.port
        return int(self.server.effective_port)

    def _serve(self) -> None:
        server = self.server
        assert server is not None
        try:
            server.run()
        except OSError:
            log.exception("http: the server loop failed; stopping")
        finally:
            self.stop_requested.set()  # the loop ends only when stop() ends it, or when it failed: stop the rest

    # --- run until a signal ---------------------------------------------------------------------------------

    def run(self) -> int:
        """Start, wait for SIGTERM or SIGINT (or a part that failed), stop; 0 when stopped cleanly."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("runtime stopping signal=%s", signal.Signals(signum).name)
            self.stop_requested.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            self.stop_requested.wait()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    # --- stop -----------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every part this runtime started, once: requests first, then workers, then the database."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.stop_requested.set()
        if self.server is not None:
            try:
                self._stop_http(self.server)
            except OSError as e:  # the loop went away under us: stop everything else all the same
                log.warning("stop: the HTTP loop had already ended error=%s", type(e).__name__)
        if self._stop_probes is not None:
            self._stop_probes()
        if self.socket_mode is not None:
            self.socket_mode.client.auto_reconnect_enabled = False  # a hang-up while closing must not reconnect
            self.socket_mode.close()
        if self.replies is not None:
            # Before the scheduler: a drain under way in its reply job stops claiming, and hands back what it holds.
            self.replies.stop()
        if self.channel_replies is not None:
            self.channel_replies.stop()
        if self.urgent is not None:
            self.urgent.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)  # the jobs under way end (a recap tick included) and so do its threads
        if self._home_started:
            self.services.home_refresh.stop()
        close_connections(self.services.client)  # the Web API connections kept open (bot/slack/client.py)
        if self._owns_store:
            self.store.close()
        log.info("runtime stopped")

    def _stop_http(self, server: BaseWSGIServer) -> None:
        """No new connections; requests in flight finish and are answered; then the loop ends and its thread."""
        # asyncore objects are only ever touched from the loop's own thread: closing a socket under its poll()
        # makes it fail. The trigger runs a function in the loop thread.
        trigger: Any = server.trigger
        channels: dict[int, Any] = server._map
        if self._http_thread is None:  # never served (a later part failed to start): close what was built
            server.close()
            server.task_dispatcher.shutdown()
            return
        trigger.pull_trigger(lambda: _close_listener(server))
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=HTTP_DRAIN_SECONDS)
        deadline = time.monotonic() + _FLUSH_SECONDS
        while time.monotonic() < deadline and any(
            getattr(channel, "total_outbufs_len", 0) for channel in list(channels.values())
        ):
            time.sleep(0.02)  # the loop thread is writing the last answers out
        trigger.pull_trigger(lambda: _close_all(channels))
        self._http_thread.join(HTTP_DRAIN_SECONDS)


def _listen(app: OffhoursApp, *, host: str, port: int) -> BaseWSGIServer:
    from bot.slack.web import create_server

    try:
        return create_server(app, host=host, port=port)
    except (OSError, ValueError) as e:  # ValueError: waitress could not resolve the host name
        raise ConfigError(
            f"cannot listen on OFFHOURS_HOST={host} PORT={port}: {e} "
            "(use an address of this machine, e.g. 0.0.0.0 or 127.0.0.1, and a free port)"
        ) from e


def _close_listener(server: Any) -> None:
    import waitress.wasyncore

    server.accepting = False
    waitress.wasyncore.dispatcher.close(server)  # the listening socket only; the trigger stays for the next call


def _close_all(channels: dict[int, Any]) -> None:
    for channel in list(channels.values()):
        channel.close()  # an empty map ends the loop


def _live_reply_senders() -> int:
    """How many ReplySenders exist in this process, counted from the live objects rather than this runtime's own
    bookkeeping, so that one built anywhere else shows in the start-up line (and the system test that reads it)."""
    from bot.workers.replies import ReplySender

    return sum(isinstance(obj, ReplySender) for obj in gc.get_objects())
