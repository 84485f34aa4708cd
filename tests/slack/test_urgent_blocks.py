""" "It's urgent" Block Kit: every payload is one Slack accepts (slack_sdk's models), at the longest note."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.urgent import MAX_NOTE, ME
from bot.slack.blocks import urgent as ui
from tests.support.blockkit import assert_valid


def test_the_modals_are_valid():
    assert_valid(ui.note_modal(7, target_id="U3", person_id="U1", to_self=False))
    assert_valid(ui.done_modal("Passed on to <@U3>."))


@pytest.mark.parametrize("to_self", [False, True])
def test_the_notice_is_valid_with_the_longest_note(to_self):
    note = "<@U9> & <!channel> " * (MAX_NOTE // 19) + "x"
    blocks = ui.notice_blocks(team_id="T1", sender_id="U2", person_id="U1", to_self=to_self, note=note[:MAX_NOTE],
                              back_at=datetime(2026, 3, 4, 14, 0, tzinfo=UTC),
                              thread_link="https://example.slack.com/archives/D1/p1" if to_self else None)  # fmt: skip
    assert_valid({"type": "home", "blocks": blocks})
    assert len(ui.notice_fallback(sender_id="U2", person_id="U1", to_self=to_self, note=note)) <= 3000


@pytest.mark.parametrize("route", [None, ME, "U3"])
def test_the_home_part_and_the_button_are_valid(route):
    assert_valid({"type": "home", "blocks": [*ui.home_blocks(route, command="/hours", problem="x"),
                                             ui.urgent_button(12)]})  # fmt: skip
