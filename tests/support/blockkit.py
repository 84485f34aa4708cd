"""Block Kit checks: a payload is what Slack accepts, as slack_sdk's models know Slack's limits."""

from __future__ import annotations

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View


def assert_valid(view: dict) -> None:
    """Slack's limits as slack_sdk knows them: the view, and every block parsed and re-serialised unchanged."""
    View(**view).validate_json()
    assert len(view["blocks"]) <= 100
    for block in view["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()
        assert parsed.to_dict() == block  # to_dict validates nested elements too; nothing unknown was dropped
    if view["type"] == "modal":
        assert len(view["title"]["text"]) <= 24
