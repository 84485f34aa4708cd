"""Command line: `python -m bot [run|web|scheduler|migrate|check|status|manifest|hours]`.

Configuration problems end with exit status 2 and one clear message, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from bot.domain.errors import ConfigError
from bot.logs import configure_logging


def _load():
    from bot.config import load_config, load_settings

    settings = load_settings()
    config = load_config(settings.config_path)
    return settings, config


def _store(settings, config):
    from bot.storage.store import Store

    store = Store(
        settings.database_url or config.storage.url,
        client_id=settings.client_id,
        encryption_key=settings.encryption_key,
    )
    store.migrate()
    return store


def serve(*, with_scheduler: bool) -> int:
    """Serve HTTP on $PORT with waitress, the reply sender beside it, and the recap scheduler if asked."""
    settings, config = _load()  # first: a configuration mistake is reported before the slow imports

    import waitress

    from bot.slack.app import create_app
    from bot.slack.web import create_wsgi
    from bot.workers.replies import ReplySender

    store = _store(settings, config)
    app = create_app(config, store, settings=settings)
    try:
        # Listening first: an address this machine does not have stops start-up before any thread is running.
        server = waitress.create_server(create_wsgi(app), host=settings.host, port=settings.port, threads=16)
    except (OSError, ValueError) as e:  # ValueError: waitress could not resolve the host name
        store.close()
        raise ConfigError(
            f"cannot listen on OFFHOURS_HOST={settings.host} PORT={settings.port}: {e} "
            "(use an address of this machine, e.g. 0.0.0.0 or 127.0.0.1, and a free port)"
        ) from e
    socket_mode = None
    if settings.app_token:
        # Socket Mode: events, commands and interactivity arrive over a WebSocket; HTTP still serves OAuth.
        # Connected first, so that a token Slack refuses stops start-up before any thread is running.
        from bot.slack.socket_mode import start_socket_mode

        socket_mode = start_socket_mode(app, app_token=settings.app_token)
    sender = ReplySender(app.services)
    sender.start()
    scheduler = None
    if with_scheduler:
        from bot.workers.scheduler import start_scheduler

        scheduler = start_scheduler(app.services)
    logging.getLogger("bot").info(
        "serving host=%s port=%d scheduler=%s socket_mode=%s",
        settings.host, settings.port, with_scheduler, socket_mode is not None,
    )  # fmt: skip

    def shut_down(*_args) -> None:
        # Leave the server loop from the main thread; closing sockets here, under running request threads,
        # made them write to closed descriptors.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, shut_down)
    try:
        server.run()
    except (KeyboardInterrupt, OSError):
        pass
    finally:
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=5)  # let requests in flight finish
        server.close()
        if socket_mode is not None:
            socket_mode.close()
        sender.stop()
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        store.close()
    return 0


def run_scheduler() -> int:
    import threading

    from bot.services import build_services
    from bot.slack.web import serve_ops
    from bot.workers.scheduler import start_scheduler

    settings, config = _load()
    store = _store(settings, config)
    services = build_services(config, store, settings=settings)
    scheduler = start_scheduler(services)
    stop_ops = serve_ops(services, host=settings.host, port=settings.metrics_port) if settings.metrics_port else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    scheduler.shutdown(wait=False)
    if stop_ops is not None:
        stop_ops()
    return 0


def migrate() -> int:
    import os

    from bot.config import load_config
    from bot.storage.store import Store

    config = load_config()
    url = os.environ.get("DATABASE_URL") or config.storage.url
    Store(url).migrate()
    print("database is up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "hours":
        from bot.cli_hours import main as hours_main

        return hours_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bot", description="Offhours: keep your working hours in Slack.")
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "web", "scheduler", "migrate", "check", "status", "manifest", "hours"],
        help="run (default): web app and scheduler; web: web app only; scheduler: recap scheduler only",
    )
    parser.add_argument("--url", help="manifest: the public base URL of this app, e.g. https://offhours.example.com")
    parser.add_argument("--socket-mode", action="store_true", help="manifest: for Socket Mode (no request URLs)")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        if args.command == "run":
            return serve(with_scheduler=True)
        if args.command == "web":
            return serve(with_scheduler=False)
        if args.command == "scheduler":
            return run_scheduler()
        if args.command == "migrate":
            return migrate()
        if args.command == "manifest":
            from bot.slack.manifest import print_manifest

            return print_manifest(args.url, socket_mode=args.socket_mode)
        if args.command == "check":
            from bot.check import run_check

            return run_check()
        if args.command == "status":
            from bot.status import run_status

            return run_status()
    except ConfigError as e:
        print(f"offhours: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
