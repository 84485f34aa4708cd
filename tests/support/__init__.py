"""What the tests share: the fake Slack, signed requests, a running server, database helpers."""
