"""Command line: `python -m bot [run|web|scheduler|migrate|check|manifest|hours]`: parse, hand over to the runtime.

Configuration problems (the environment, config.yaml, a database that does not open) end with exit status 2 and
one clear message, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.domain.errors import ConfigError

# logfmt: every field is key=value (the time too, in ISO 8601), so a log platform parses lines without a pattern.
LOG_FORMAT = "time=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"

COMMANDS_HELP = """commands:
  run        the web app, the workers and the scheduler in one process (the default)
  web        the web app only (HTTP or Socket Mode) and the reply sender
  scheduler  the scheduler only: recaps and the other timed jobs
  migrate    bring the database schema up to date (Alembic), then exit
  check      check the environment, config.yaml and the database without changing anything
  manifest   print the Slack app manifest (--url BASE_URL, or --socket-mode)
  hours      ask the hours engine about one schedule: python -m bot hours --help
"""


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt=LOG_DATE_FORMAT, stream=sys.stderr)
    # Bolt and slack_sdk log request and response bodies (tokens, message text) at DEBUG: keep them quieter.
    for noisy in ("slack_bolt", "slack_sdk", "bot.bolt", "waitress.queue", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(command: str) -> int:
    """Run the parts `command` names (bot/runtime.py COMMANDS) until SIGTERM or SIGINT."""
    from bot.runtime import COMMANDS, Runtime, load_environment

    settings, config = load_environment()  # first: a configuration mistake is reported before the slow imports
    return Runtime(COMMANDS[command], settings=settings, config=config).run()


def migrate() -> int:
    """Bring the database schema up to date; needs only the database URL (no Slack variables)."""
    from bot.config import database_url_and_source, load_config
    from bot.runtime import open_store

    url, source = database_url_and_source(load_config())
    open_store(url, source=source).close()
    print("database is up to date")
    return 0


def check() -> int:
    from bot.check import run_check
    from bot.config import database_url_and_source, load_config
    from bot.runtime import check_database_url

    try:
        config = load_config()
    except ConfigError:
        config = None  # the checklist reports it, with everything else it can check
    if config is not None:
        # A URL without a driver would end the checklist in a traceback: it is the deployment's mistake, named here.
        url, source = database_url_and_source(config)
        check_database_url(url, source=source)
    return run_check()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "hours":
        from bot.cli_hours import main as hours_main

        return hours_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Offhours: keep your working hours in Slack.",
        epilog=COMMANDS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "web", "scheduler", "migrate", "check", "manifest", "hours"],
        help="what to do (default: run); each is described below",
    )
    parser.add_argument("--url", help="manifest: the public base URL of this app, e.g. https://offhours.example.com")
    parser.add_argument("--socket-mode", action="store_true", help="manifest: for Socket Mode (no request URLs)")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        if args.command in ("run", "web", "scheduler"):
            return serve(args.command)
        if args.command == "migrate":
            return migrate()
        if args.command == "manifest":
            from bot.slack.manifest import print_manifest

            return print_manifest(args.url, socket_mode=args.socket_mode)
        if args.command == "check":
            return check()
    except ConfigError as e:
        print(f"offhours: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
