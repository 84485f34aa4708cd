"""Where an event's Python CPU goes: py-spy's collapsed stacks, split into the database layer and the rest.

    py-spy record --gil --nonblocking -r 2000 -f raw -o bare.txt -- python bench/inprocess.py --threads 0 --apps bare
    py-spy record --gil ... -o offhours.txt -- python bench/inprocess.py --threads 0 --apps offhours
    python bench/profile_summary.py bare.txt offhours.txt [--top 25]

Only stacks on the event path count (a request through Bolt's WSGI handler, the reply sender's drain and posting
threads, Bolt's listener threads): start-up, imports and seeding are left out. "database" is every sample with
SQLAlchemy, bot/storage/engine.py (bot/db.py in older profiles) or a driver anywhere in its stack. With `--gil` a sample
is CPU spent in Python holding the GIL, so the split answers "how far would Offhours be from the bare app if every
database call were free?".
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# RecapSender.tick: the fan-out's claiming thread (bench/fanout.py under py-spy); its posting threads are threads.
EVENT_PATH = ("SlackRequestHandler.__call__", "Thread._bootstrap", "ReplySender.drain", "RecapSender.tick")
# bot/storage/engine.py holds what bot/db.py held before the move (the engine, reading, writing)
DATABASE = ("sqlalchemy/", "bot/storage/engine.py", "bot/storage/db.py", "bot/db.py", "sqlite3", "psycopg")
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:)]*)(?::\d+)?\)$")


@dataclass
class Split:
    event_path: int = 0
    database: int = 0
    frames: Counter = field(default_factory=Counter)  # inclusive samples per frame (function and file)

    @property
    def rest(self) -> int:
        return self.event_path - self.database


def frame_name(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['name']} ({match['file'].rsplit('/', 1)[-1]})"


def split(lines: Iterable[str]) -> Split:
    """py-spy's raw format: one line per distinct stack, frames joined by ';', then a space and the sample count."""
    result = Split()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit() or not any(key in stack for key in EVENT_PATH):
            continue
        samples = int(count)
        result.event_path += samples
        if any(key in stack for key in DATABASE):
            result.database += samples
        for name in {frame_name(frame) for frame in stack.split(";")}:
            result.frames[name] += samples
    return result


def report(paths: list[Path], top: int) -> str:
    splits = {path.stem: split(path.read_text().splitlines()) for path in paths}
    out = [
        "| profile | event-path samples | database | rest | × first (all) | × first (rest) |",
        "|---|---|---|---|---|---|",
    ]
    first = next(iter(splits.values()))
    for name, s in splits.items():
        ratio = s.event_path / first.event_path if first.event_path else float("nan")
        ratio_rest = s.rest / first.rest if first.rest else float("nan")
        out.append(f"| {name} | {s.event_path:,} | {s.database:,} | {s.rest:,} | {ratio:.2f} | {ratio_rest:.2f} |")
    for name, s in splits.items():
        out += ["", f"{name}: top frames by inclusive samples (share of the event path)"]
        for frame, samples in s.frames.most_common(top):
            out.append(f"  {samples:7,d} {100 * samples / max(s.event_path, 1):5.1f} %  {frame}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path, help="py-spy raw files; ratios are against the first")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(report(args.profiles, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
