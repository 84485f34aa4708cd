"""The fan-out benchmark's floor is the fake limiter's own best schedule: every post at its `earliest` instant
passes the limiter, and none could pass sooner."""

from __future__ import annotations

from tests.support.fakeslack import RateLimits


def replay(limits: RateLimits, channels: list[str], times: list[float]) -> list[int | None]:
    return [limits.admit(channel, at) for channel, at in zip(channels, times, strict=True)]


def test_a_burst_within_the_window_passes_at_once_and_the_rest_waits_for_the_window():
    channels = [f"U{i}" for i in range(25)]
    times = RateLimits(workspace_per_minute=10).earliest(channels)
    assert times[:10] == [0.0] * 10
    assert all(60 < t < 60.001 for t in times[10:20]) and all(120 < t < 120.01 for t in times[20:])
    assert replay(RateLimits(workspace_per_minute=10), channels, times) == [None] * 25


def test_no_post_could_pass_before_its_earliest_instant():
    channels = [f"U{i}" for i in range(25)]
    times = RateLimits(workspace_per_minute=10).earliest(channels)
    for k in (10, 20):  # the first post of each later burst
        limits = RateLimits(workspace_per_minute=10)
        assert replay(limits, channels[:k], times[:k]) == [None] * k
        assert limits.admit(channels[k], times[k] - 0.001) is not None  # a moment sooner is refused


def test_posts_to_one_channel_are_a_second_apart_even_under_the_workspace_limit():
    channels = ["D1", "D1", "D2", "D1"]
    times = RateLimits(per_channel_per_second=1.0, workspace_per_minute=100).earliest(channels)
    assert times == [0.0, 1.0, 0.0, 2.0]
    limits = RateLimits(per_channel_per_second=1.0, workspace_per_minute=100)
    assert limits.admit("D1", 0.0) is None and limits.admit("D1", 0.5) == 1


def test_ten_thousand_recaps_at_six_thousand_a_minute_have_a_floor_of_one_window_not_a_hundred_seconds():
    floor = RateLimits(workspace_per_minute=6000).earliest([f"U{i}" for i in range(10_000)])[-1]
    assert 60 < floor < 60.001
