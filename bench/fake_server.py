"""tests/support/fakeslack.FakeSlack in a process of its own, for the benchmarks: prints its base URL, runs until
stdin closes.

Adds two bench-only methods: bench.reset (clear counts, set rate limits) and bench.stats (posts accepted, 429s
answered, monotonic time of the last accepted post, the calls per method, optionally the per-channel counts), and
answers auth.test for any token (with a workspace URL).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.fakeslack import FakeSlack, RateLimits


class BenchSlack(FakeSlack):
    def __init__(self) -> None:
        super().__init__()
        self.record_calls = False  # the benchmarks count posts per channel instead of keeping every call
        self._stats_lock = threading.Lock()
        self.posts = 0
        self.limited = 0
        self.method_counts: dict[str, int] = defaultdict(int)
        self.last_post = 0.0
        self.post_times: list[float] = []  # when each accepted post was answered (monotonic)

    def answer(self, method, token, params, **kwargs):
        status, headers, body = super().answer(method, token, params, **kwargs)
        with self._stats_lock:
            self.method_counts[method] += 1
            if method == "chat.postMessage":
                if status == 429:
                    self.limited += 1
                elif status == 200 and body.get("ok"):
                    self.posts += 1
                    self.last_post = time.monotonic()
                    self.post_times.append(self.last_post)
        return status, headers, body

    def _auth_test(self, token, params):
        # Every token the benchmarks use is valid (none is registered with the fake): the recap sender learns the
        # workspace's URL from the bot token's answer.
        return {"ok": True, "url": "https://bench.slack.com/", "team_id": "T1", "user_id": "UBOT"}

    def _bench_reset(self, token, params):
        with self._stats_lock, self._lock:
            self.posts = self.limited = 0
            self.last_post = 0.0
            self.post_times = []
            self.method_counts.clear()
            self.post_counts.clear()
            per_channel = params.get("per_channel_per_second")
            self.rate_limits = (
                RateLimits(per_channel_per_second=per_channel, workspace_per_minute=params.get("workspace_per_minute"))
                if per_channel
                else None
            )
        return {"ok": True}

    def _bench_stats(self, token, params):
        with self._stats_lock, self._lock:
            answer = {
                "ok": True,
                "posts": self.posts,
                "limited": self.limited,
                "last_post": self.last_post,
                "methods": dict(self.method_counts),
            }
            if params.get("counts"):
                answer["post_counts"] = dict(self.post_counts)
                answer["post_times"] = list(self.post_times)
        return answer


def main() -> int:
    fake = BenchSlack().start()
    print(fake.base_url, flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or dies)
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
