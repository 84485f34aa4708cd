"""Everything that speaks Slack: the Bolt app, listeners, Block Kit, OAuth, the Web API client."""
