"""Command line: `python -m bot [run|web|scheduler|migrate|check|status|manifest|hours]`: parse, hand over.

Configuration problems (the environment, config.yaml, a database that does not open) end with exit status 2 and
one clear message, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot.domain.errors import ConfigError
from bot.logs import configure_logging

COMMANDS_HELP = """commands:
  run        the web app, the workers and the scheduler in one process (the default)
  web        the web app only (HTTP or Socket Mode) and the reply sender
  scheduler  the scheduler only: recaps and the other timed jobs
  migrate    bring the database schema up to date (Alembic), then exit
  check      check the environment, config.yaml and the database without changing anything
  status     per workspace: people connected, pending deliveries, recaps sent, the last scheduler tick
  manifest   print the Slack app manifest (--url BASE_URL, or --socket-mode)
  hours      ask the hours engine about one schedule: python -m bot hours --help
"""


def serve(command: str) -> int:
    """Run the parts `command` names (bot/runtime.py COMMANDS) until SIGTERM or SIGINT."""
    from bot.runtime import COMMANDS, Runtime, load_environment

    settings, config = load_environment()  # first: a configuration mistake is reported before the slow imports
    return Runtime(COMMANDS[command], settings=settings, config=config).run()


def migrate() -> int:
    """Bring the database schema up to date; needs only the database URL (no Slack variables)."""
    from bot.config import load_config
    from bot.settings import database_url_and_source
    from bot.storage.opening import open_store

    url, source = database_url_and_source(load_config())
    open_store(url, source=source).close()
    print("database is up to date")
    return 0


def check() -> int:
    """The deployment checklist (bot/check.py): it reports every problem itself, configuration ones included."""
    from bot.check import main as check_main

    return check_main()


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
        choices=["run", "web", "scheduler", "migrate", "check", "status", "manifest", "hours"],
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
        if args.command == "status":
            from bot.status import run_status

            return run_status()
    except ConfigError as e:
        print(f"offhours: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
